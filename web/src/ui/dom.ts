// Small DOM helpers shared by the pages.

export type Child = Node | string | null | undefined | false;

export function el<K extends keyof HTMLElementTagNameMap>(
  tag: K,
  attrs: Record<string, string | undefined> = {},
  ...children: Child[]
): HTMLElementTagNameMap[K] {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) if (v !== undefined) e.setAttribute(k, v);
  for (const c of children) if (c !== null && c !== undefined && c !== false) e.append(c);
  return e;
}

export const $ = <T extends HTMLElement = HTMLElement>(sel: string): T => {
  const e = document.querySelector<T>(sel);
  if (!e) throw new Error(`page element ${sel} is missing`);
  return e;
};

/** Unix seconds of block time → `YYYY-MM-DD HH:MM:SS UTC`. */
export function utcTime(secs: bigint | number): string {
  const n = Number(secs);
  if (!n) return '';
  return new Date(n * 1000).toISOString().replace('T', ' ').replace(/\.\d+Z$/, ' UTC');
}

export function setStatus(text: string, kind: 'ok' | 'warn' | 'error' | 'info' = 'info'): void {
  const s = $('#status');
  s.textContent = text;
  s.className = `status ${kind}`;
}

export function download(name: string, data: string | Blob, type = 'application/json'): void {
  const url = URL.createObjectURL(typeof data === 'string' ? new Blob([data], { type }) : data);
  const a = el('a', { href: url, download: name });
  document.body.append(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(url), 10_000);
}
