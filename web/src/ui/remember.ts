// "Remember this key on this device" (issue 27): the key sealed under a passphrase in IndexedDB
// (src/keystore.ts), unlocked on the next visit, forgotten on request. The key is never stored
// in clear; a wrong passphrase says so.

import { toHex } from '../bytes.ts';
import { indexedDbStore, openKey, passphraseProblem, sealKey, WrongPassphrase, type KeyStore } from '../keystore.ts';
import type { PatientKey } from '../tx.ts';
import { $ } from './dom.ts';

let store: KeyStore | undefined;
/** The hex public key of the key remembered on this device, if any. */
let remembered: string | undefined;
let current: PatientKey | undefined;

const msg = (e: unknown) => (e instanceof Error ? e.message : String(e));

function say(sel: string, text: string, error = false): void {
  const p = $(sel);
  p.textContent = text;
  p.hidden = text === '';
  p.classList.toggle('form-error', error);
}

function render(): void {
  const mine = current ? toHex(current.publicKey) : undefined;
  $('#unlock-box').hidden = !remembered || mine === remembered;
  $('#unlock-public').textContent = remembered ?? '';
  $('#remember-box').hidden = !store || !current || mine === remembered;
  $('#forget-box').hidden = !remembered;
  $('#remembered-note').hidden = !remembered || mine !== remembered;
}

/** Wires the remember / unlock / forget controls; `open` opens an unlocked key. */
export async function wireRemember(open: (k: PatientKey, note: string) => void): Promise<void> {
  try {
    if (typeof indexedDB === 'undefined') throw new Error('this browser has no IndexedDB');
    store = indexedDbStore();
    remembered = (await store.get())?.publicKey;
  } catch (e) {
    store = undefined;
    say('#remember-unavailable', `This browser cannot remember a key (${msg(e)}); open your key file at each visit.`);
  }
  $('#remember-save').addEventListener('click', () => void remember());
  $('#unlock-open').addEventListener('click', () => void unlock(open));
  $('#unlock-pass').addEventListener('keydown', (e) => {
    if ((e as KeyboardEvent).key === 'Enter') void unlock(open);
  });
  $('#key-forget').addEventListener('click', () => void forget());
  render();
}

/** The page opened `k`: offer to remember it (unless it is the remembered one). */
export function keyOpened(k: PatientKey): void {
  current = k;
  say('#remember-msg', '');
  render();
}

async function remember(): Promise<void> {
  const k = current;
  if (!k || !store) return;
  const pass = $<HTMLInputElement>('#remember-pass');
  const again = $<HTMLInputElement>('#remember-pass2');
  const problem = passphraseProblem(pass.value, again.value);
  if (problem) {
    say('#remember-msg', `Not remembered: ${problem}.`, true);
    return;
  }
  say('#remember-msg', 'Encrypting your key under the passphrase…');
  try {
    const sealed = await sealKey(k, pass.value);
    await store.put(sealed);
    remembered = sealed.publicKey;
    pass.value = '';
    again.value = '';
    say('#remember-msg', '');
    render();
    say('#remembered-note', 'This device now remembers your key, encrypted under your passphrase. Next time, unlock it with the passphrase instead of opening the key file.');
  } catch (e) {
    say('#remember-msg', `Not remembered: ${msg(e)}.`, true);
  }
}

async function unlock(open: (k: PatientKey, note: string) => void): Promise<void> {
  if (!store) return;
  const pass = $<HTMLInputElement>('#unlock-pass');
  say('#unlock-msg', 'Unlocking (this takes a moment)…');
  try {
    const sealed = await store.get();
    if (!sealed) {
      remembered = undefined;
      render();
      say('#unlock-msg', 'No key is remembered on this device any more: open your key file.', true);
      return;
    }
    const k = await openKey(sealed, pass.value);
    pass.value = '';
    say('#unlock-msg', '');
    current = k;
    render();
    say('#remembered-note', 'Your key was unlocked from this device.');
    open(k, 'Your key was unlocked from this device.');
  } catch (e) {
    pass.value = '';
    say('#unlock-msg', e instanceof WrongPassphrase ? 'Wrong passphrase: the remembered key did not open. Try again, or open your key file instead.' : `The remembered key did not open: ${msg(e)}`, true);
    pass.focus();
  }
}

async function forget(): Promise<void> {
  if (!store || !remembered) return;
  if (!window.confirm('Forget the key remembered on this device? To open it again you will need your key file.')) return;
  try {
    await store.remove();
    remembered = undefined;
    say('#unlock-msg', '');
    say('#remembered-note', '');
    render();
    say('#forget-msg', 'This device no longer remembers your key.');
  } catch (e) {
    say('#forget-msg', `Not forgotten: ${msg(e)}`, true);
  }
}
