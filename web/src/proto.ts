// A small protobuf (proto3) reader and writer, driven by hand-written schemas of the few
// medledger messages the pages use (proto/medledger/v1/*.proto).

import { fromUtf8, utf8, concat } from './bytes.ts';

export type FieldType = 'string' | 'bytes' | 'uint64' | 'uint32' | 'bool' | { enum: Record<number, string> } | { message: Schema };
export interface FieldDef {
  name: string;
  type: FieldType;
  repeated?: boolean;
}
export interface Schema {
  name: string;
  fields: Record<number, FieldDef>;
  /** Fields of one oneof (the decoded object names the case in `oneof`). */
  oneof?: string;
}
export type Decoded = Record<string, unknown>;

export class Reader {
  pos = 0;
  constructor(readonly buf: Uint8Array) {}
  get done(): boolean {
    return this.pos >= this.buf.length;
  }
  varint(): bigint {
    let n = 0n;
    for (let shift = 0n; shift < 70n; shift += 7n) {
      if (this.pos >= this.buf.length) throw new Error('protobuf: truncated varint');
      const b = this.buf[this.pos++];
      n |= BigInt(b & 0x7f) << shift;
      if ((b & 0x80) === 0) {
        if (n >= 1n << 64n) throw new Error('protobuf: varint over 64 bits');
        return n;
      }
    }
    throw new Error('protobuf: varint too long');
  }
  bytes(): Uint8Array {
    const len = this.varint();
    if (len > BigInt(this.buf.length - this.pos)) throw new Error('protobuf: length past the end');
    const out = this.buf.subarray(this.pos, this.pos + Number(len));
    this.pos += Number(len);
    return out;
  }
  skip(wire: number): void {
    switch (wire) {
      case 0:
        this.varint();
        return;
      case 1:
        this.take(8);
        return;
      case 2:
        this.bytes();
        return;
      case 5:
        this.take(4);
        return;
      default:
        throw new Error(`protobuf: unsupported wire type ${wire}`);
    }
  }
  take(n: number): Uint8Array {
    if (this.pos + n > this.buf.length) throw new Error('protobuf: truncated');
    const out = this.buf.subarray(this.pos, this.pos + n);
    this.pos += n;
    return out;
  }
}

function isScalarVarint(t: FieldType): boolean {
  return t === 'uint64' || t === 'uint32' || t === 'bool' || (typeof t === 'object' && 'enum' in t);
}

function defaultOf(f: FieldDef): unknown {
  if (f.repeated) return [];
  const t = f.type;
  if (t === 'string') return '';
  if (t === 'bytes') return new Uint8Array();
  if (t === 'uint64') return 0n;
  if (t === 'uint32') return 0;
  if (t === 'bool') return false;
  if ('enum' in t) return t.enum[0] ?? 0;
  return undefined;
}

function scalarFromVarint(t: FieldType, v: bigint): unknown {
  if (t === 'uint64') return v;
  if (t === 'uint32') return Number(v & 0xffffffffn);
  if (t === 'bool') return v !== 0n;
  if (typeof t === 'object' && 'enum' in t) return t.enum[Number(v)] ?? Number(v);
  throw new Error('not a varint field');
}

/** Decodes `buf` with `schema`. Every field gets its proto3 default when absent. */
export function decode(schema: Schema, buf: Uint8Array): Decoded {
  const out: Decoded = {};
  if (!schema.oneof) for (const f of Object.values(schema.fields)) out[f.name] = defaultOf(f);
  const r = new Reader(buf);
  while (!r.done) {
    const key = r.varint();
    const no = Number(key >> 3n);
    const wire = Number(key & 7n);
    if (no === 0) throw new Error('protobuf: field number 0');
    const f = schema.fields[no];
    if (!f) {
      r.skip(wire);
      continue;
    }
    const put = (v: unknown) => {
      if (f.repeated) (out[f.name] as unknown[]).push(v);
      else out[f.name] = v;
      if (schema.oneof) out[schema.oneof] = f.name;
    };
    const t = f.type;
    if (isScalarVarint(t)) {
      if (wire === 0) put(scalarFromVarint(t, r.varint()));
      else if (wire === 2 && f.repeated) {
        const inner = new Reader(r.bytes());
        while (!inner.done) put(scalarFromVarint(t, inner.varint()));
      } else throw new Error(`protobuf: ${schema.name}.${f.name} has wire type ${wire}`);
      continue;
    }
    if (wire !== 2) throw new Error(`protobuf: ${schema.name}.${f.name} has wire type ${wire}`);
    const b = r.bytes();
    if (t === 'string') put(fromUtf8(b));
    else if (t === 'bytes') put(b.slice());
    else if (typeof t === 'object' && 'message' in t) put(decode(t.message, b));
  }
  return out;
}

// ---- writer (canonical proto3: field order, defaults omitted, repeated scalars packed) ----

export function varint(n: bigint | number): Uint8Array {
  let v = BigInt(n);
  if (v < 0n || v >= 1n << 64n) throw new Error('varint out of range');
  const out: number[] = [];
  while (v >= 0x80n) {
    out.push(Number(v & 0x7fn) | 0x80);
    v >>= 7n;
  }
  out.push(Number(v));
  return Uint8Array.from(out);
}

const tag = (no: number, wire: number) => varint((no << 3) | wire);
const lenDelimited = (no: number, b: Uint8Array) => concat(tag(no, 2), varint(b.length), b);

export class Writer {
  private parts: Uint8Array[] = [];
  string(no: number, s: string): this {
    if (s !== '') this.parts.push(lenDelimited(no, utf8(s)));
    return this;
  }
  bytes(no: number, b: Uint8Array): this {
    if (b.length) this.parts.push(lenDelimited(no, b));
    return this;
  }
  uint(no: number, n: bigint | number): this {
    if (BigInt(n) !== 0n) this.parts.push(concat(tag(no, 0), varint(n)));
    return this;
  }
  /** A message field; present even when empty (a oneof case must be sent). */
  message(no: number, b: Uint8Array): this {
    this.parts.push(lenDelimited(no, b));
    return this;
  }
  repeatedString(no: number, xs: string[]): this {
    for (const s of xs) this.parts.push(lenDelimited(no, utf8(s)));
    return this;
  }
  packed(no: number, xs: (bigint | number)[]): this {
    if (xs.length) this.parts.push(lenDelimited(no, concat(...xs.map((x) => varint(x)))));
    return this;
  }
  finish(): Uint8Array {
    return concat(...this.parts);
  }
}
