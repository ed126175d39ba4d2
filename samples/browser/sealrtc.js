// sealrtc for browsers: keying v1 + frame format v1 (DESIGN.md), WebCrypto only.
//
//   encrypted frame = clear_prefix || wire(sframe_header || ciphertext || tag)
//   (wire: H.264 emulation prevention for H.264, identity for the other codecs)
//   AEAD aad        = sframe_header || clear_prefix
//
// SFrame (RFC 9605, errata 8321 and 8565) with all eight suites of sealrtc (0x0001-0x0008),
// the keying of a shared secret (PBKDF2 -> base key, HKDF fingerprint, random 48-bit sender tags),
// the 128-counter replay window per KID and the secret_mismatch / secret_match events.
// Sans-I/O like its Python twin: bytes in, bytes out, time from an injectable clock.
// No secret, key or plaintext is ever logged or put in an error message.

const enc = new TextEncoder();
const subtle = globalThis.crypto.subtle;

export const PBKDF2_SALT_PREFIX = enc.encode("sealrtc/v1/shared-secret");
export const PBKDF2_ITERATIONS = 100000;
export const FINGERPRINT_INFO = enc.encode("sealrtc/v1/fingerprint");
export const KEY_LABEL = enc.encode("SFrame 1.0 Secret key ");
export const SALT_LABEL = enc.encode("SFrame 1.0 Secret salt ");
export const DEFAULT_WINDOW = 128;
export const MAX_RECEIVE_KIDS = 64;
export const MAX_PREVIOUS_SECRETS = 8;
export const MAX_DECRYPT_ONLY_SECRETS = 8;
export const DEFAULT_MISMATCH_THRESHOLD = 3;
const MAX_VALUE = (1n << 64n) - 1n;
const SENDER_TAG_BITS = 48n;

// name, hash, Nh, Nka, Nk, Nn, Nt
const SUITE_TABLE = [
  [1, "AES_128_CTR_HMAC_SHA256_80", "SHA-256", 32, 16, 48, 12, 10],
  [2, "AES_128_CTR_HMAC_SHA256_64", "SHA-256", 32, 16, 48, 12, 8],
  [3, "AES_128_CTR_HMAC_SHA256_32", "SHA-256", 32, 16, 48, 12, 4],
  [4, "AES_128_GCM_SHA256_128", "SHA-256", 32, 0, 16, 12, 16],
  [5, "AES_256_GCM_SHA512_128", "SHA-512", 64, 0, 32, 12, 16],
  [6, "AES_256_CTR_HMAC_SHA512_80", "SHA-512", 64, 32, 96, 12, 10],
  [7, "AES_256_CTR_HMAC_SHA512_64", "SHA-512", 64, 32, 96, 12, 8],
  [8, "AES_256_CTR_HMAC_SHA512_32", "SHA-512", 64, 32, 96, 12, 4],
];
export const SUITES = Object.freeze(
  Object.fromEntries(
    SUITE_TABLE.map(([suite, name, hash, nh, nka, nk, nn, nt]) => [
      suite,
      Object.freeze({ suite, name, hash, nh, nka, nk, nn, nt, ctrHmac: nka > 0 }),
    ]),
  ),
);
export const DEFAULT_SUITE = 6;

export function suiteParams(suite) {
  const params = SUITES[suite];
  if (!params) throw new RangeError(`unknown SFrame cipher suite ${suite}`);
  return params;
}

// -- errors (remote faults: count, drop, carry on) ----------------------------------------------

export class DecryptError extends Error {
  constructor(reason, message, kid = null) {
    super(message);
    this.name = "DecryptError";
    this.reason = reason; // "malformed" | "unknown_key" | "authentication_failed" | "replayed"
    this.kid = kid;
  }
}
export const DECRYPT_FAILURE_REASONS = Object.freeze(["malformed", "unknown_key", "authentication_failed", "replayed"]);

export class InvalidSecret extends TypeError {}
export class InvalidFrame extends RangeError {}

// -- bytes --------------------------------------------------------------------------------------

export function concat(...parts) {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

function u64be(value) {
  const out = new Uint8Array(8);
  new DataView(out.buffer).setBigUint64(0, BigInt(value));
  return out;
}

function byteLength(value) {
  let n = 0;
  for (let v = value; v > 0n; v >>= 8n) n += 1;
  return n;
}

function bigToBytes(value, n) {
  const out = new Uint8Array(n);
  let v = value;
  for (let i = n - 1; i >= 0; i--) {
    out[i] = Number(v & 0xffn);
    v >>= 8n;
  }
  return out;
}

function bytesToBig(data) {
  let v = 0n;
  for (const b of data) v = (v << 8n) | BigInt(b);
  return v;
}

export function toHex(data) {
  return Array.from(data, (b) => b.toString(16).padStart(2, "0")).join("");
}

export function fromHex(hex) {
  const out = new Uint8Array(hex.length / 2);
  for (let i = 0; i < out.length; i++) out[i] = parseInt(hex.substr(2 * i, 2), 16);
  return out;
}

/** Compare two equal-length tags without an early exit (the tag is secret until it verified). */
function tagsEqual(a, b) {
  if (a.length !== b.length) return false;
  let diff = 0;
  for (let i = 0; i < a.length; i++) diff |= a[i] ^ b[i];
  return diff === 0;
}

// -- SFrame header (RFC 9605 4.3) ---------------------------------------------------------------

export function encodeHeader(kid, ctr) {
  kid = BigInt(kid);
  ctr = BigInt(ctr);
  if (kid < 0n || kid > MAX_VALUE || ctr < 0n || ctr > MAX_VALUE) {
    throw new RangeError("SFrame KID and CTR must be 64-bit unsigned integers");
  }
  let config = 0;
  const tail = [];
  if (kid < 8n) {
    config |= Number(kid) << 4;
  } else {
    const n = byteLength(kid);
    config |= 0x80 | ((n - 1) << 4);
    tail.push(bigToBytes(kid, n));
  }
  if (ctr < 8n) {
    config |= Number(ctr);
  } else {
    const n = byteLength(ctr);
    config |= 0x08 | (n - 1);
    tail.push(bigToBytes(ctr, n));
  }
  return concat(Uint8Array.of(config), ...tail);
}

/** Parse a header at `offset`: {kid, ctr, length}; non-minimal or truncated is "malformed". */
export function decodeHeader(data, offset = 0) {
  if (offset >= data.length) throw new DecryptError("malformed", "frame too short for an SFrame header");
  const config = data[offset];
  let pos = offset + 1;
  const field = (extended, bits, what) => {
    if (!extended) return BigInt(bits);
    const n = bits + 1;
    if (pos + n > data.length) throw new DecryptError("malformed", `truncated SFrame ${what}`);
    if (data[pos] === 0) throw new DecryptError("malformed", `non-minimal SFrame ${what}`);
    const value = bytesToBig(data.subarray(pos, pos + n));
    if (value < 8n) throw new DecryptError("malformed", `non-minimal SFrame ${what}`);
    pos += n;
    return value;
  };
  const kid = field(config & 0x80, (config >> 4) & 0x07, "KID");
  const ctr = field(config & 0x08, config & 0x07, "CTR");
  return { kid, ctr, length: pos - offset };
}

// -- key schedule (RFC 9605 4.4.2) --------------------------------------------------------------

async function hkdf(hash, ikm, info, length) {
  const key = await subtle.importKey("raw", ikm, "HKDF", false, ["deriveBits"]);
  // Empty salt: HKDF-Extract("", ikm) as RFC 9605 and keying v1 specify.
  const bits = await subtle.deriveBits({ name: "HKDF", hash, salt: new Uint8Array(0), info }, key, length * 8);
  return new Uint8Array(bits);
}

/** (sframe_key, sframe_salt) for `kid` under `baseKey` (Uint8Array). */
export async function deriveKeySalt(suite, kid, baseKey) {
  const p = suiteParams(suite);
  const suffix = concat(u64be(BigInt(kid)), Uint8Array.of(suite >> 8, suite & 0xff));
  const key = await hkdf(p.hash, baseKey, concat(KEY_LABEL, suffix), p.nk);
  const salt = await hkdf(p.hash, baseKey, concat(SALT_LABEL, suffix), p.nn);
  return { key, salt };
}

/** nonce = salt XOR CTR encoded big-endian in len(salt) bytes (erratum 8321). */
export function makeNonce(salt, ctr) {
  const nonce = Uint8Array.from(salt);
  let v = BigInt(ctr);
  for (let i = nonce.length - 1; i >= 0 && v > 0n; i--) {
    nonce[i] ^= Number(v & 0xffn);
    v >>= 8n;
  }
  return nonce;
}

// -- AEADs (RFC 9605 4.5.1 and RFC 5116) --------------------------------------------------------

/** One SFrame AEAD key with its WebCrypto keys imported once (non-extractable). */
export class AeadKey {
  static async create(suite, keyBytes) {
    const p = suiteParams(suite);
    if (keyBytes.length !== p.nk) throw new RangeError(`SFrame key for suite ${p.name} must be ${p.nk} bytes`);
    const self = new AeadKey();
    self.params = p;
    if (p.ctrHmac) {
      self.ctrKey = await subtle.importKey("raw", keyBytes.subarray(0, p.nka), "AES-CTR", false, ["encrypt"]);
      self.macKey = await subtle.importKey(
        "raw",
        keyBytes.subarray(p.nka),
        { name: "HMAC", hash: p.hash },
        false,
        ["sign"],
      );
    } else {
      self.gcmKey = await subtle.importKey("raw", keyBytes, "AES-GCM", false, ["encrypt", "decrypt"]);
    }
    return self;
  }

  get tagLength() {
    return this.params.nt;
  }

  async _tag(nonce, aad, ct) {
    const input = concat(u64be(aad.length), u64be(ct.length), u64be(this.params.nt), nonce, aad, ct);
    const mac = new Uint8Array(await subtle.sign("HMAC", this.macKey, input));
    return mac.subarray(0, this.params.nt);
  }

  async _ctr(nonce, data) {
    // Counter block nonce || 00000000; the low 64 bits count (OpenSSL counts all 128: same below 2^64 blocks).
    const counter = concat(nonce, new Uint8Array(4));
    return new Uint8Array(await subtle.encrypt({ name: "AES-CTR", counter, length: 64 }, this.ctrKey, data));
  }

  /** ciphertext || tag */
  async seal(nonce, aad, plaintext) {
    if (this.gcmKey) {
      return new Uint8Array(
        await subtle.encrypt({ name: "AES-GCM", iv: nonce, additionalData: aad, tagLength: 128 }, this.gcmKey, plaintext),
      );
    }
    const ct = await this._ctr(nonce, plaintext);
    return concat(ct, await this._tag(nonce, aad, ct));
  }

  /** Verify the tag, then decrypt; throws DecryptError("authentication_failed"). */
  async open(nonce, aad, data) {
    if (data.length < this.params.nt) throw new DecryptError("malformed", "ciphertext shorter than its tag");
    if (this.gcmKey) {
      try {
        return new Uint8Array(
          await subtle.decrypt({ name: "AES-GCM", iv: nonce, additionalData: aad, tagLength: 128 }, this.gcmKey, data),
        );
      } catch {
        throw new DecryptError("authentication_failed", "tag did not verify");
      }
    }
    const split = data.length - this.params.nt;
    const ct = data.subarray(0, split);
    if (!tagsEqual(await this._tag(nonce, aad, ct), data.subarray(split))) {
      throw new DecryptError("authentication_failed", "tag did not verify");
    }
    return this._ctr(nonce, ct);
  }
}

/** Whole-frame SFrame encrypt: header || ciphertext || tag, aad = header || metadata. */
export async function sframeEncrypt(suite, baseKey, kid, ctr, plaintext, metadata = new Uint8Array(0)) {
  const { key, salt } = await deriveKeySalt(suite, kid, baseKey);
  const header = encodeHeader(kid, ctr);
  const aead = await AeadKey.create(suite, key);
  return concat(header, await aead.seal(makeNonce(salt, ctr), concat(header, metadata), plaintext));
}

export async function sframeDecrypt(suite, baseKey, data, metadata = new Uint8Array(0)) {
  const { kid, ctr, length } = decodeHeader(data);
  const p = suiteParams(suite);
  if (data.length < length + p.nt) throw new DecryptError("malformed", "frame shorter than header and tag");
  const { key, salt } = await deriveKeySalt(suite, kid, baseKey);
  const aead = await AeadKey.create(suite, key);
  return aead.open(makeNonce(salt, ctr), concat(data.subarray(0, length), metadata), data.subarray(length));
}

// -- codec layout (frame format v1) -------------------------------------------------------------

export function codecFromName(name) {
  const short = String(name || "").toLowerCase().split("/").pop();
  return short === "opus" || short === "vp8" || short === "h264" ? short : "generic";
}

/**
 * Opus: 1 (TOC); VP8: 10 on a key frame (bit 0 of byte 0 clear), else 3; H.264: through the
 * first slice's NAL header and the slice-header bytes up to the last bit of pic_parameter_set_id
 * (throws InvalidFrame when there is no parsable slice); others 0.
 */
export function clearPrefixLength(codec, frame) {
  if (codec === "opus") return 1;
  if (codec === "vp8") {
    if (frame.length === 0) return 1;
    return (frame[0] & 0x01) === 0 ? 10 : 3;
  }
  if (codec === "h264") return parseSliceHeader(frame, firstVcl(frame) + 1).end;
  return 0;
}

// -- H.264 (Annex-B): emulation prevention, slice header, normalisation -------------------------
// The SFrame part after an H.264 clear prefix is escaped on the wire (ITU-T H.264 7.4.1), so
// that no packetizer finds a start code in it; see the README's wire format.

const START_CODE = new Uint8Array([0, 0, 0, 1]);

/** Trailing 00 bytes of `data` (at most 2): the zero count escaping starts from. */
export function trailingZeros(data) {
  const n = data.length;
  if (n >= 2 && data[n - 1] === 0 && data[n - 2] === 0) return 2;
  return n >= 1 && data[n - 1] === 0 ? 1 : 0;
}

/** Write 03 wherever two 00 were written and the next byte is 00..03. */
export function h264Escape(data, zeros = 0) {
  const out = new Uint8Array(data.length + Math.ceil(data.length / 2) + 1);
  let j = 0;
  let count = zeros;
  for (const b of data) {
    if (count >= 2 && b <= 3) {
      out[j++] = 3;
      count = 0;
    }
    out[j++] = b;
    count = b === 0 ? count + 1 : 0;
  }
  return out.slice(0, j);
}

/** The inverse of h264Escape; throws InvalidFrame on 00 00 00/01/02. */
export function h264Unescape(data, zeros = 0) {
  const out = new Uint8Array(data.length);
  let j = 0;
  let count = zeros;
  for (const b of data) {
    if (count >= 2) {
      if (b === 3) {
        count = 0;
        continue;
      }
      if (b < 3) throw new InvalidFrame("escaped H.264 data contains a start code");
    }
    out[j++] = b;
    count = b === 0 ? count + 1 : 0;
  }
  return out.slice(0, j);
}

class RbspBits {
  constructor(data, pos) {
    this.data = data;
    this.pos = pos;
    this.zeros = 0;
    this.bit = 8;
    this.byte = 0;
    this.last = pos;
  }

  nextByte() {
    const d = this.data;
    let pos = this.pos;
    if (pos < d.length && this.zeros >= 2 && d[pos] === 3) {
      pos += 1;
      this.zeros = 0;
    }
    if (pos >= d.length || (this.zeros >= 2 && d[pos] <= 2)) throw new InvalidFrame("H.264 NAL unit ends inside its header");
    const b = d[pos];
    this.zeros = b === 0 ? this.zeros + 1 : 0;
    this.byte = b;
    this.bit = 0;
    this.last = pos;
    this.pos = pos + 1;
  }

  u(n) {
    let v = 0;
    for (let i = 0; i < n; i++) {
      if (this.bit === 8) this.nextByte();
      v = v * 2 + ((this.byte >> (7 - this.bit)) & 1);
      this.bit += 1;
    }
    return v;
  }

  ue() {
    let leading = 0;
    while (this.u(1) === 0) {
      leading += 1;
      if (leading > 31) throw new InvalidFrame("H.264 Exp-Golomb code is too long");
    }
    return 2 ** leading - 1 + this.u(leading);
  }

  se() {
    const k = this.ue();
    return k % 2 ? (k + 1) / 2 : -(k / 2);
  }
}

/** {firstMb, sliceType, ppsId, end} of the slice header at data[pos] (after the NAL header). */
export function parseSliceHeader(data, pos) {
  const bits = new RbspBits(data, pos);
  const firstMb = bits.ue();
  const sliceType = bits.ue();
  const ppsId = bits.ue();
  if (sliceType > 9) throw new InvalidFrame("H.264 slice_type out of range");
  if (ppsId > 255) throw new InvalidFrame("H.264 pic_parameter_set_id out of range");
  return { firstMb, sliceType, ppsId, end: bits.last + 1 };
}

function findStart(data, from) {
  for (let i = from; i + 2 < data.length; i++) {
    if (data[i + 2] > 1) {
      i += 2;
    } else if (data[i] === 0 && data[i + 1] === 0 && data[i + 2] === 1) {
      return i;
    }
  }
  return -1;
}

/** Offset of the NAL header byte of the first slice (NAL type 1 or 5). */
export function firstVcl(frame) {
  let i;
  if (frame.length >= 4 && frame[0] === 0 && frame[1] === 0 && frame[2] === 0 && frame[3] === 1) i = 4;
  else if (frame.length >= 3 && frame[0] === 0 && frame[1] === 0 && frame[2] === 1) i = 3;
  else throw new InvalidFrame("H.264 frame does not start with a start code");
  while (i < frame.length) {
    const type = frame[i] & 0x1f;
    if (type === 1 || type === 5) return i;
    const j = findStart(frame, i + 1);
    if (j < 0) break;
    i = j + 3;
  }
  throw new InvalidFrame("H.264 frame has no slice");
}

/** The NAL units of an Annex-B stream (trailing 00 bytes belong to the next start code). */
export function splitNals(frame) {
  const nals = [];
  let start = -1;
  let i = 0;
  const push = (end) => {
    let e = end;
    while (e > start && frame[e - 1] === 0) e -= 1;
    if (e > start) nals.push(frame.subarray(start, e));
  };
  while (true) {
    const j = findStart(frame, i);
    if (j < 0) break;
    if (start >= 0) push(j);
    start = j + 3;
    i = start;
  }
  if (start >= 0) push(frame.length);
  return nals;
}

const HIGH_PROFILES = new Set([100, 110, 122, 244, 44, 83, 86, 118, 128, 138, 139, 134, 135]);

class BitWriter {
  constructor(bits = []) {
    this.bits = bits;
  }

  u(n, v) {
    for (let i = n - 1; i >= 0; i--) this.bits.push(Math.floor(v / 2 ** i) % 2);
  }

  ue(v) {
    const code = v + 1;
    const length = Math.floor(Math.log2(code)) + 1;
    this.u(length - 1, 0);
    this.u(length, code);
  }

  rbsp() {
    const bits = [...this.bits, 1];
    while (bits.length % 8) bits.push(0);
    const out = new Uint8Array(bits.length / 8);
    for (let i = 0; i < bits.length; i++) out[i >> 3] |= bits[i] << (7 - (i & 7));
    return out;
  }
}

/**
 * `nal` (an SPS) with bitstream_restriction_flag = 1, max_num_reorder_frames = 0 and
 * max_dec_frame_buffering = max_num_ref_frames — an SPS Chromium's receiver does not rewrite (a
 * rewrite would change authenticated bytes); `nal` itself when it already is one.
 */
export function restrictSps(nal) {
  const bits = new RbspBits(nal, 1);
  const copied = [];
  const take = (n) => {
    const v = bits.u(n);
    for (let i = n - 1; i >= 0; i--) copied.push(Math.floor(v / 2 ** i) % 2);
    return v;
  };
  const takeUe = () => {
    let leading = 0;
    while (take(1) === 0) {
      leading += 1;
      if (leading > 31) throw new InvalidFrame("H.264 Exp-Golomb code is too long");
    }
    return 2 ** leading - 1 + take(leading);
  };
  const takeSe = () => {
    const k = takeUe();
    return k % 2 ? (k + 1) / 2 : -(k / 2);
  };
  const profile = take(8);
  take(16);
  takeUe();
  if (HIGH_PROFILES.has(profile)) {
    if (takeUe() === 3) take(1);
    takeUe();
    takeUe();
    take(1);
    if (take(1)) throw new InvalidFrame("H.264 SPS with scaling lists is not supported");
  }
  takeUe();
  const pocType = takeUe();
  if (pocType === 0) takeUe();
  else if (pocType === 1) {
    take(1);
    takeSe();
    takeSe();
    const n = takeUe();
    for (let i = 0; i < n; i++) takeSe();
  }
  const maxRef = takeUe();
  take(1);
  takeUe();
  takeUe();
  if (!take(1)) take(1);
  take(1);
  if (take(1)) for (let i = 0; i < 4; i++) takeUe();
  const beforeVui = copied.length;
  let writer;
  let mvOver = 1;
  let fields = [2, 1, 16, 16];
  if (take(1)) {
    if (take(1) && take(8) === 255) take(32);
    if (take(1)) take(1);
    if (take(1)) {
      take(4);
      if (take(1)) take(24);
    }
    if (take(1)) {
      takeUe();
      takeUe();
    }
    if (take(1)) {
      take(32);
      take(32);
      take(1);
    }
    if (take(1) || take(1)) throw new InvalidFrame("H.264 SPS with HRD parameters is not supported");
    take(1);
    writer = new BitWriter(copied.slice());
    if (bits.u(1)) {
      mvOver = bits.u(1);
      fields = [bits.ue(), bits.ue(), bits.ue(), bits.ue()];
      const reorder = bits.ue();
      const buffering = bits.ue();
      if (reorder === 0 && buffering <= maxRef) return nal;
    }
  } else {
    writer = new BitWriter(copied.slice(0, beforeVui));
    writer.u(1, 1);
    writer.u(8, 0);
  }
  writer.u(1, 1);
  writer.u(1, mvOver);
  for (const v of fields) writer.ue(v);
  writer.ue(0);
  writer.ue(maxRef);
  return concat(nal.subarray(0, 1), h264Escape(writer.rbsp()));
}

/**
 * An encoder's frame as it is sent: H.264 gets 4-byte start codes, no empty NAL, no access-unit
 * delimiter and restricted SPSs (throws InvalidFrame for an SPS it cannot parse); other codecs
 * are returned as they are.
 */
export function normaliseFrame(codec, frame) {
  if (codec !== "h264") return frame;
  const parts = [];
  for (let nal of splitNals(frame)) {
    const type = nal[0] & 0x1f;
    if (type === 9) continue;
    if (type === 7) nal = restrictSps(nal);
    parts.push(START_CODE, nal);
  }
  return concat(...parts);
}

// -- replay window (RFC 3711 3.3.2 adapted to CTR) ----------------------------------------------

export class ReplayWindow {
  constructor(size = DEFAULT_WINDOW) {
    if (size < 1) throw new RangeError("replay window must hold at least one counter");
    this.size = BigInt(size);
    this.highest = -1n;
    this.mask = 0n;
  }

  check(ctr) {
    if (ctr > this.highest) return true;
    const offset = this.highest - ctr;
    if (offset >= this.size) return false;
    return ((this.mask >> offset) & 1n) === 0n;
  }

  accept(ctr) {
    if (ctr > this.highest) {
      const shift = ctr - this.highest;
      this.mask = shift < this.size ? ((this.mask << shift) | 1n) & ((1n << this.size) - 1n) : 1n;
      this.highest = ctr;
    } else {
      this.mask |= 1n << (this.highest - ctr);
    }
  }
}

// -- keying v1 ----------------------------------------------------------------------------------

function checkSecret(secret) {
  if (typeof secret !== "string") throw new InvalidSecret("the E2EE secret must be a string");
  if (!secret) throw new InvalidSecret("the E2EE secret must not be empty");
  return secret.normalize("NFC");
}

/** base_key = PBKDF2-HMAC-SHA256(NFC(secret), "sealrtc/v1/shared-secret" + context, 100000, 32). */
export async function deriveBaseKey(secret, context = new Uint8Array(0)) {
  const password = enc.encode(checkSecret(secret));
  const key = await subtle.importKey("raw", password, "PBKDF2", false, ["deriveBits"]);
  const bits = await subtle.deriveBits(
    { name: "PBKDF2", hash: "SHA-256", salt: concat(PBKDF2_SALT_PREFIX, context), iterations: PBKDF2_ITERATIONS },
    key,
    256,
  );
  const material = new Uint8Array(bits);
  const fingerprint = (await hkdf("SHA-256", material, FINGERPRINT_INFO, 1))[0];
  return Object.freeze({ material, fingerprint });
}

function sameKey(a, b) {
  return tagsEqual(a.material, b.material);
}

/** The session secret: current for sending, previous ones for `grace` seconds, decrypt-only ones. */
export class SharedSecret {
  static async create(secret, { context = new Uint8Array(0), suite = DEFAULT_SUITE, grace = 10, clock } = {}) {
    const self = new SharedSecret();
    self.suite = suiteParams(suite).suite;
    if (grace < 0) throw new RangeError("grace must be >= 0 seconds");
    self.context = context;
    self.grace = grace;
    self.clock = clock || (() => performance.now() / 1000);
    self.current = await deriveBaseKey(secret, context);
    self.previous = []; // [{key, until}]
    self.decryptOnly = [];
    self.generation = 0;
    self.listeners = [];
    return self;
  }

  now() {
    return this.clock();
  }

  async setSecret(secret) {
    const next = await deriveBaseKey(secret, this.context);
    if (sameKey(next, this.current)) return;
    this.previous.unshift({ key: this.current, until: this.clock() + this.grace });
    this.previous.length = Math.min(this.previous.length, MAX_PREVIOUS_SECRETS);
    this.decryptOnly = this.decryptOnly.filter((k) => !sameKey(k, next));
    this.current = next;
    this.generation += 1;
    for (const listener of [...this.listeners]) listener();
  }

  async addDecryptionSecret(secret) {
    const next = await deriveBaseKey(secret, this.context);
    if (sameKey(next, this.current) || this.decryptOnly.some((k) => sameKey(k, next))) return;
    this.decryptOnly.unshift(next);
    this.decryptOnly.length = Math.min(this.decryptOnly.length, MAX_DECRYPT_ONLY_SECRETS);
  }

  addRotationListener(listener) {
    this.listeners.push(listener);
    return () => {
      this.listeners = this.listeners.filter((l) => l !== listener);
    };
  }

  decryptionKeys() {
    const now = this.clock();
    this.previous = this.previous.filter((p) => p.until > now);
    return [this.current, ...this.previous.map((p) => p.key), ...this.decryptOnly];
  }

  candidates(fingerprint) {
    return this.decryptionKeys().filter((k) => k.fingerprint === fingerprint);
  }

  /** candidates() for a whole KID (its low byte is the fingerprint). */
  async candidatesFor(kid) {
    return this.candidates(Number(kid & 0xffn));
  }

  /** A frame authenticated under `key`: nothing to adopt in keying v1. */
  confirm() {}

  isUsable(key) {
    return key === this.current || this.decryptionKeys().includes(key);
  }

  /** (random tag in [1, 2^48) << 8) | fingerprint */
  newSenderKid() {
    const words = new Uint32Array(2);
    let tag = 0n;
    while (tag === 0n) {
      crypto.getRandomValues(words);
      tag = ((BigInt(words[0] & 0xffff) << 32n) | BigInt(words[1])) & ((1n << SENDER_TAG_BITS) - 1n);
    }
    return (tag << 8n) | BigInt(this.current.fingerprint);
  }
}

// -- keying v2: key epochs with the RFC 9605 ratchet --------------------------------------------
//
// E_0 = HKDF(root, "sealrtc/v2/epoch", Nh); E_{i+1} = HKDF(E_i, "SFrame 1.0 Ratchet", Nh);
// fp2 = HKDF(root, "sealrtc/v2/fingerprint", 1)[0]; KID = tag << 16 | (i mod 256) << 8 | fp2, with
// the suite's hash and root = keying v1's base key. Receivers follow senders up to 16 epochs
// ahead (derived on a copy, adopted once a frame authenticates); an epoch export lets a joiner
// read that epoch and later ones only. As in Python, old keys are dropped, not wiped.

export const EPOCH_INFO = enc.encode("sealrtc/v2/epoch");
export const RATCHET_INFO = enc.encode("SFrame 1.0 Ratchet");
export const FINGERPRINT_INFO_V2 = enc.encode("sealrtc/v2/fingerprint");
export const MAX_AHEAD = 16;
export const MAX_PREVIOUS_EPOCHS = 32;
const SENDER_TAG_BITS_V2 = 40n;

export async function epochZero(root, suite) {
  const p = suiteParams(suite);
  return hkdf(p.hash, root, EPOCH_INFO, p.nh);
}

export async function ratchet(epochKey, suite) {
  const p = suiteParams(suite);
  return hkdf(p.hash, epochKey, RATCHET_INFO, p.nh);
}

export async function fingerprintV2(root, suite) {
  return (await hkdf(suiteParams(suite).hash, root, FINGERPRINT_INFO_V2, 1))[0];
}

/** tag << 16 | (epoch mod 256) << 8 | fingerprint (BigInt). */
export function kidV2(tag, epoch, fingerprint) {
  return (BigInt(tag) << 16n) | (BigInt(epoch % 256) << 8n) | BigInt(fingerprint & 0xff);
}

function fromBase64(text) {
  const raw = atob(text);
  return Uint8Array.from(raw, (c) => c.charCodeAt(0));
}

function toBase64(data) {
  return btoa(String.fromCharCode(...data));
}

export class EpochKeys {
  static async fromSecret(secret, { context = new Uint8Array(0), suite = DEFAULT_SUITE, epoch = 0, grace = 10, clock } = {}) {
    const root = (await deriveBaseKey(secret, context)).material;
    let material = await epochZero(root, suite);
    for (let i = 0; i < epoch; i++) material = await ratchet(material, suite);
    const start = Object.freeze({ material, fingerprint: await fingerprintV2(root, suite), epoch });
    return new EpochKeys(start, { suite, grace, clock });
  }

  /** A joiner from exportEpoch()'s object (an epoch file): that epoch and later ones only. */
  static fromExport(data, { grace = 10, clock } = {}) {
    const bad = (what) => new InvalidSecret(`epoch export: ${what}`);
    if (!data || data.v !== 2) throw new InvalidSecret("not a keying v2 epoch export");
    if (!Number.isInteger(data.suite) || !SUITES[data.suite]) throw bad("suite must be a cipher suite number 1-8");
    if (!Number.isInteger(data.fp2) || data.fp2 < 0 || data.fp2 > 255) throw bad("fp2 must be 0-255");
    if (!Number.isInteger(data.epoch) || data.epoch < 0) throw bad("epoch must be an integer >= 0");
    let material = null;
    try {
      material = typeof data.key === "string" ? fromBase64(data.key) : null;
    } catch {
      material = null;
    }
    const nh = suiteParams(data.suite).nh;
    if (!material || material.length !== nh) throw bad(`key must be ${nh} bytes of base64 for this suite`);
    return new EpochKeys(Object.freeze({ material, fingerprint: data.fp2, epoch: data.epoch }), {
      suite: data.suite,
      grace,
      clock,
    });
  }

  constructor(start, { suite = DEFAULT_SUITE, grace = 10, clock } = {}) {
    this.suite = suiteParams(suite).suite;
    if (grace < 0) throw new RangeError("grace must be >= 0 seconds");
    this.grace = grace;
    this.clock = clock || (() => performance.now() / 1000);
    this.floor = start.epoch;
    this.current = start;
    this.previous = []; // [{key, until}], newest first
    this.ahead = []; // E_{current+1}, E_{current+2}...: derived on demand, adopted by confirm()
    this.generation = 0;
    this.derivations = 0;
    this.listeners = [];
  }

  get epoch() {
    return this.current.epoch;
  }

  now() {
    return this.clock();
  }

  exportEpoch() {
    const c = this.current;
    return { v: 2, suite: this.suite, fp2: c.fingerprint, epoch: c.epoch, key: toBase64(c.material) };
  }

  async _deriveAhead(steps) {
    while (this.ahead.length < steps) {
      const last = this.ahead.length ? this.ahead[this.ahead.length - 1] : this.current.material;
      this.ahead.push(await ratchet(last, this.suite));
      this.derivations += 1;
    }
    return this.ahead[steps - 1];
  }

  _stepTo(epoch, key = null) {
    const steps = epoch - this.current.epoch;
    if (steps <= 0) return;
    const until = this.clock() + this.grace;
    const fp = this.current.fingerprint;
    const passed = [this.current];
    for (let j = 0; j < steps - 1; j++) {
      passed.push(Object.freeze({ material: this.ahead[j], fingerprint: fp, epoch: this.current.epoch + 1 + j }));
    }
    this.current = key || Object.freeze({ material: this.ahead[steps - 1], fingerprint: fp, epoch });
    this.ahead.splice(0, steps);
    this.previous = [...passed.reverse().map((k) => ({ key: k, until })), ...this.previous];
    this.previous.length = Math.min(this.previous.length, MAX_PREVIOUS_EPOCHS);
    this.generation += 1;
    for (const listener of [...this.listeners]) listener();
  }

  /** Move to the next epoch; returns it. */
  async advance() {
    await this._deriveAhead(1);
    this._stepTo(this.current.epoch + 1);
    return this.current.epoch;
  }

  addRotationListener(listener) {
    this.listeners.push(listener);
    return () => {
      this.listeners = this.listeners.filter((l) => l !== listener);
    };
  }

  decryptionKeys() {
    const now = this.clock();
    this.previous = this.previous.filter((p) => p.until > now);
    return [this.current, ...this.previous.map((p) => p.key)];
  }

  /** The epoch key a KID names: later epochs derived on a copy (at most MAX_AHEAD), nothing else derived. */
  async candidatesFor(kid) {
    if (Number(kid & 0xffn) !== this.current.fingerprint) return [];
    const delta = (((Number((kid >> 8n) & 0xffn) - this.current.epoch) % 256) + 256) % 256;
    if (delta === 0) return [this.current];
    if (delta <= MAX_AHEAD) {
      const material = await this._deriveAhead(delta);
      return [Object.freeze({ material, fingerprint: this.current.fingerprint, epoch: this.current.epoch + delta })];
    }
    const wanted = this.current.epoch - (256 - delta);
    return this.decryptionKeys().slice(1).filter((k) => k.epoch === wanted);
  }

  /** A frame authenticated under `key`: a later epoch becomes the current one (senders follow). */
  confirm(key) {
    if (key && key.epoch !== undefined && key.epoch > this.current.epoch) this._stepTo(key.epoch, key);
  }

  isUsable(key) {
    return key === this.current || this.decryptionKeys().includes(key);
  }

  /** (random 40-bit non-zero tag) << 16 | (epoch mod 256) << 8 | fp2 */
  newSenderKid() {
    const words = new Uint32Array(2);
    let tag = 0n;
    while (tag === 0n) {
      crypto.getRandomValues(words);
      tag = ((BigInt(words[0] & 0xff) << 32n) | BigInt(words[1])) & ((1n << SENDER_TAG_BITS_V2) - 1n);
    }
    return kidV2(tag, this.current.epoch, this.current.fingerprint);
  }
}

// -- frame encryptor / decryptor ----------------------------------------------------------------

/** Serialise async work so counters, keys and replay windows change in frame order. */
class Queue {
  constructor() {
    this.tail = Promise.resolve();
  }

  run(fn) {
    const result = this.tail.then(fn);
    this.tail = result.catch(() => undefined);
    return result;
  }
}

export class FrameEncryptor {
  constructor(keys, codec = "generic") {
    this.keys = keys;
    this.codec = codecFromName(codec);
    this.stats = { frames_encrypted: 0, bytes_in: 0, bytes_out: 0, frames_refused: 0, kid_switches: 0 };
    this.keyframeWanted = false;
    this.generation = -1;
    this.kid = 0n;
    this.ctr = 0n;
    this.aead = null;
    this.salt = null;
    this.queue = new Queue();
  }

  async _switchKid() {
    const first = this.aead === null;
    const kid = this.keys.newSenderKid();
    const generation = this.keys.generation;
    const { key, salt } = await deriveKeySalt(this.keys.suite, kid, this.keys.current.material);
    this.aead = await AeadKey.create(this.keys.suite, key);
    this.salt = salt;
    this.kid = kid;
    this.ctr = 0n;
    this.generation = generation;
    if (!first) {
      this.keyframeWanted = true;
      this.stats.kid_switches += 1;
    }
  }

  takeKeyframeRequest() {
    const wanted = this.keyframeWanted;
    this.keyframeWanted = false;
    return wanted;
  }

  /** Frame-format-v1 ciphertext of `frame` (Uint8Array); throws InvalidFrame for a too-short frame. */
  encrypt(frame) {
    return this.queue.run(async () => {
      let n;
      try {
        n = clearPrefixLength(this.codec, frame);
      } catch (exc) {
        if (exc instanceof InvalidFrame) this.stats.frames_refused += 1;
        throw exc;
      }
      if (frame.length < n) {
        this.stats.frames_refused += 1;
        throw new InvalidFrame(`${this.codec} frame of ${frame.length} bytes is shorter than its ${n}-byte header`);
      }
      if (this.generation !== this.keys.generation || this.ctr > MAX_VALUE) await this._switchKid();
      const ctr = this.ctr;
      this.ctr = ctr + 1n;
      const header = encodeHeader(this.kid, ctr);
      const prefix = frame.subarray(0, n);
      const sealed = await this.aead.seal(makeNonce(this.salt, ctr), concat(header, prefix), frame.subarray(n));
      const body = concat(header, sealed);
      const out = concat(prefix, this.codec === "h264" ? h264Escape(body, trailingZeros(prefix)) : body);
      this.stats.frames_encrypted += 1;
      this.stats.bytes_in += frame.length;
      this.stats.bytes_out += out.length;
      return out;
    });
  }
}

export class FrameDecryptor {
  constructor(keys, codec = "generic", { onEvent = null, replayWindow = DEFAULT_WINDOW, mismatchThreshold } = {}) {
    this.keys = keys;
    this.codec = codecFromName(codec);
    this.onEvent = onEvent;
    this.window = replayWindow;
    this.threshold = mismatchThreshold ?? DEFAULT_MISMATCH_THRESHOLD;
    if (this.threshold < 1) throw new RangeError("mismatchThreshold must be >= 1");
    this.tagLength = suiteParams(keys.suite).nt;
    this.mismatched = false;
    this.keyFailures = 0;
    this.kids = new Map(); // kid (bigint) -> {base, aead, salt, window}; insertion order = LRU
    this.stats = {
      frames_decrypted: 0,
      bytes_in: 0,
      bytes_out: 0,
      decrypt_failures: Object.fromEntries(DECRYPT_FAILURE_REASONS.map((r) => [r, 0])),
    };
    this.queue = new Queue();
  }

  _emit(event) {
    if (!this.onEvent) return;
    try {
      this.onEvent(event);
    } catch {
      // a broken listener must not break the media path
    }
  }

  /** {data, kid, ctr}; throws DecryptError (counted by reason). */
  decrypt(data) {
    return this.queue.run(async () => {
      let frame;
      try {
        frame = await this._open(data);
      } catch (exc) {
        if (exc instanceof DecryptError) this._fail(exc);
        throw exc;
      }
      this.keyFailures = 0;
      this.stats.frames_decrypted += 1;
      this.stats.bytes_in += data.length;
      this.stats.bytes_out += frame.data.length;
      if (this.mismatched) {
        this.mismatched = false;
        this._emit({ type: "secret_match", kid: frame.kid, at: this.keys.now() });
      }
      return frame;
    });
  }

  _fail(exc) {
    this.stats.decrypt_failures[exc.reason] = (this.stats.decrypt_failures[exc.reason] || 0) + 1;
    if (exc.reason === "unknown_key" || exc.reason === "authentication_failed") {
      this.keyFailures += 1;
      if (!this.mismatched && this.keyFailures >= this.threshold) {
        this.mismatched = true;
        this._emit({ type: "secret_mismatch", kid: exc.kid ?? -1n, reason: exc.reason, at: this.keys.now() });
      }
    }
  }

  async _open(wire) {
    let n;
    let data = wire;
    try {
      n = clearPrefixLength(this.codec, wire);
      if (this.codec === "h264" && n <= wire.length) {
        const prefix = wire.subarray(0, n);
        data = concat(prefix, h264Unescape(wire.subarray(n), trailingZeros(prefix)));
      }
    } catch (exc) {
      if (exc instanceof InvalidFrame) throw new DecryptError("malformed", "not a frame of the stream's codec");
      throw exc;
    }
    if (data.length < n + 1 + this.tagLength) {
      throw new DecryptError("malformed", "frame shorter than clear prefix, header and tag");
    }
    const { kid, ctr, length } = decodeHeader(data, n);
    const body = n + length;
    if (data.length < body + this.tagLength) {
      throw new DecryptError("malformed", "frame shorter than clear prefix, header and tag");
    }
    const aad = concat(data.subarray(n, body), data.subarray(0, n));
    const sealed = data.subarray(body);
    let entry = this.kids.get(kid);
    if (entry && !this.keys.isUsable(entry.base)) {
      this.kids.delete(kid);
      entry = undefined;
    }
    if (entry) {
      if (!entry.window.check(ctr)) throw new DecryptError("replayed", "frame counter already seen or too old", kid);
      let plaintext;
      try {
        plaintext = await entry.aead.open(makeNonce(entry.salt, ctr), aad, sealed);
      } catch (exc) {
        if (exc instanceof DecryptError) throw new DecryptError(exc.reason, exc.message, kid);
        throw exc;
      }
      entry.window.accept(ctr);
      this.kids.delete(kid);
      this.kids.set(kid, entry);
      return { data: concat(data.subarray(0, n), plaintext), kid, ctr };
    }
    const candidates = await this.keys.candidatesFor(kid);
    if (!candidates.length) throw new DecryptError("unknown_key", "no secret matches the frame's key id", kid);
    for (const base of candidates) {
      const { key, salt } = await deriveKeySalt(this.keys.suite, kid, base.material);
      const fresh = { base, aead: await AeadKey.create(this.keys.suite, key), salt, window: new ReplayWindow(this.window) };
      let plaintext;
      try {
        plaintext = await fresh.aead.open(makeNonce(salt, ctr), aad, sealed);
      } catch (exc) {
        if (exc instanceof DecryptError) continue;
        throw exc;
      }
      fresh.window.accept(ctr);
      this.keys.confirm(base);
      this.kids.set(kid, fresh);
      while (this.kids.size > MAX_RECEIVE_KIDS) this.kids.delete(this.kids.keys().next().value);
      return { data: concat(data.subarray(0, n), plaintext), kid, ctr };
    }
    throw new DecryptError("authentication_failed", "tag did not verify under any known secret", kid);
  }
}
