"""samples/browser/sealrtc.js in headless Chromium against sealrtc's own vectors, both ways.

Frames encrypted by Python decrypt in the browser and frames encrypted by the browser decrypt in
Python, for every suite, Opus/VP8/H.264/generic layouts and a secret that is not in NFC; plus the RFC
9605 vectors of tests/vectors/sframe.json and the receive rules (replay, tamper, events).
"""

from __future__ import annotations

import json
import unicodedata
from pathlib import Path
from typing import Any

import pytest

from sealrtc import FrameDecryptor, FrameEncryptor, SharedSecret, h264
from sealrtc.keys import derive_base_key
from sealrtc.layout import clear_prefix_length, codec_from_name

from .browser_helpers import chromium, serve_sample

pytestmark = [pytest.mark.network, pytest.mark.browser]

VECTORS = json.loads((Path(__file__).parent / "vectors" / "sframe.json").read_text())

# Decomposed "e" + COMBINING ACUTE: the browser gets this form, Python the composed one.
NON_NFC = "Cafe\u0301 au lait \u2126"  # OHM SIGN normalises to GREEK CAPITAL OMEGA
SECRETS = ["correct horse battery staple", NON_NFC]
CONTEXT = b"room-42"
FRAMES = {
    "opus": [bytes([0x78]) + bytes(range(40)), bytes([0x78, 1, 2, 3])],
    "vp8": [bytes([0x10, 0x02, 0x00, 0x9D, 0x01, 0x2A, 0x80, 0x02, 0xE0, 0x01]) + b"key" * 30, b"\x31\x01\x00delta"],
    "generic": [b"", b"generic frame payload" * 10],
    "h264": [
        bytes.fromhex("00000001 6742c01fd90141fa10000003001000000303c8f1832480 00000001 68ce3880 00000001 658884")
        + h264.escape(bytes(range(256)) * 3),  # libx264's SPS; zero runs in the slice data are escaped
        bytes.fromhex("00000001 419a") + h264.escape(bytes(8) + b"\x01\x02"),
    ],
}

JS_ROUNDTRIP = """
async (cases) => {
  const m = await import('/sealrtc.js');
  const out = [];
  for (const c of cases) {
    const context = m.fromHex(c.context);
    const keys = await m.SharedSecret.create(c.secret, { context, suite: c.suite });
    const base = keys.current;
    const dec = new m.FrameDecryptor(keys, c.codec);
    const decrypted = [];
    for (const hex of c.python_frames) decrypted.push(m.toHex((await dec.decrypt(m.fromHex(hex))).data));
    const encryptor = new m.FrameEncryptor(keys, c.codec);
    const encrypted = [];
    for (const hex of c.plaintexts) encrypted.push(m.toHex(await encryptor.encrypt(m.fromHex(hex))));
    out.push({ base_key: m.toHex(base.material), fingerprint: base.fingerprint, decrypted, encrypted,
               kid: encryptor.kid.toString() });
  }
  return out;
}
"""

JS_RFC_VECTORS = """
async (v) => {
  const m = await import('/sealrtc.js');
  const failures = [];
  for (const t of v.header) {
    const h = m.toHex(m.encodeHeader(BigInt(t.kid), BigInt(t.ctr)));
    const d = m.decodeHeader(m.fromHex(t.header));
    if (h !== t.header || d.kid.toString() !== t.kid || d.ctr.toString() !== t.ctr || d.length * 2 !== t.header.length)
      failures.push(['header', t.kid, t.ctr, h]);
  }
  for (const t of v.aead) {
    const key = await m.AeadKey.create(t.cipher_suite, m.fromHex(t.key));
    const ct = m.toHex(await key.seal(m.fromHex(t.nonce), m.fromHex(t.aad), m.fromHex(t.pt)));
    const pt = m.toHex(await key.open(m.fromHex(t.nonce), m.fromHex(t.aad), m.fromHex(t.ct)));
    if (ct !== t.ct || pt !== t.pt) failures.push(['aead', t.cipher_suite, ct]);
  }
  for (const t of v.sframe) {
    const base = m.fromHex(t.base_key);
    const ks = await m.deriveKeySalt(t.cipher_suite, BigInt(t.kid), base);
    const ct = m.toHex(await m.sframeEncrypt(t.cipher_suite, base, BigInt(t.kid), BigInt(t.ctr),
                                             m.fromHex(t.pt), m.fromHex(t.metadata)));
    const pt = m.toHex(await m.sframeDecrypt(t.cipher_suite, base, m.fromHex(t.ct), m.fromHex(t.metadata)));
    const nonce = m.toHex(m.makeNonce(ks.salt, BigInt(t.ctr)));
    if (ct !== t.ct || pt !== t.pt || m.toHex(ks.key) !== t.sframe_key || m.toHex(ks.salt) !== t.sframe_salt
        || nonce !== t.nonce)
      failures.push(['sframe', t.cipher_suite, ct]);
  }
  let malformed = 0;
  for (const bad of ['', '88', '8000', '0800', '900001', '8f01']) {
    try { m.decodeHeader(m.fromHex(bad)); } catch (e) { if (e.reason === 'malformed') malformed += 1; }
  }
  return { failures, malformed, counted: v.header.length + v.aead.length + v.sframe.length };
}
"""

JS_RECEIVE_RULES = """
async (c) => {
  const m = await import('/sealrtc.js');
  let now = 100;
  const clock = () => now;
  const context = m.fromHex(c.context);
  const keys = await m.SharedSecret.create(c.secret, { context, clock });
  const wrong = await m.SharedSecret.create('not the secret', { context, clock });
  const events = [];
  const dec = new m.FrameDecryptor(keys, 'opus', { onEvent: (e) => events.push(e.type) });
  const reasons = [];
  const attempt = async (hex) => {
    try { await dec.decrypt(m.fromHex(hex)); reasons.push('ok'); } catch (e) { reasons.push(e.reason); }
  };
  const bad = new m.FrameEncryptor(wrong, 'opus');
  for (let i = 0; i < 3; i++) await attempt(m.toHex(await bad.encrypt(m.fromHex('78010203'))));
  await attempt(c.frames[0]);                  // decrypts: secret_match
  await attempt(c.frames[0]);                  // replay
  const tampered = m.fromHex(c.frames[1]);
  tampered[tampered.length - 1] ^= 1;
  await attempt(m.toHex(tampered));            // authentication_failed
  await attempt(c.frames[0].slice(0, 6));      // malformed
  await attempt(c.frames[1]);                  // ok
  // Rotation: the previous secret decrypts during grace, not after.
  const rotating = await m.SharedSecret.create(c.secret, { context, clock, grace: 10 });
  const sender = new m.FrameEncryptor(await m.SharedSecret.create(c.secret, { context, clock }), 'generic');
  const old = await sender.encrypt(m.fromHex('0102'));
  await rotating.setSecret('a new secret');
  const rdec = new m.FrameDecryptor(rotating, 'generic');
  const during = await rdec.decrypt(old).then(() => 'ok', (e) => e.reason);
  now += 11;
  const after = await new m.FrameDecryptor(rotating, 'generic').decrypt(old).then(() => 'ok', (e) => e.reason);
  let invalid = '';
  try { await m.SharedSecret.create(''); } catch (e) { invalid = e.constructor.name; }
  return { events, reasons, stats: dec.stats, during, after, invalid };
}
"""


def _cases() -> list[dict[str, Any]]:
    cases = []
    for suite in range(1, 9):
        for codec, frames in FRAMES.items():
            for secret in SECRETS:
                python_secret = unicodedata.normalize("NFC", secret)
                encryptor = FrameEncryptor(SharedSecret(python_secret, context=CONTEXT, suite=suite), codec)
                cases.append(
                    {
                        "suite": suite,
                        "codec": codec,
                        "secret": secret,
                        "context": CONTEXT.hex(),
                        "plaintexts": [f.hex() for f in frames],
                        "python_frames": [encryptor.encrypt(f).hex() for f in frames],
                    }
                )
    return cases


async def test_python_and_browser_frames_decrypt_both_ways() -> None:
    cases = _cases()
    assert NON_NFC != unicodedata.normalize("NFC", NON_NFC)
    async with serve_sample() as base, chromium() as browser:
        page = await browser.new_page(f"{base}/index.html")
        results = await page.call(JS_ROUNDTRIP, cases, timeout=120)
    assert len(results) == len(cases)
    for case, result in zip(cases, results, strict=True):
        label = (case["suite"], case["codec"], case["secret"] == NON_NFC)
        base_key = derive_base_key(unicodedata.normalize("NFC", case["secret"]), CONTEXT)
        assert result["base_key"] == base_key.material.hex(), label
        assert result["fingerprint"] == base_key.fingerprint, label
        assert result["decrypted"] == case["plaintexts"], label
        kid = int(result["kid"])
        assert kid & 0xFF == base_key.fingerprint and 1 <= kid >> 8 < 1 << 48, label
        keys = SharedSecret(unicodedata.normalize("NFC", case["secret"]), context=CONTEXT, suite=case["suite"])
        decryptor = FrameDecryptor(keys, case["codec"])
        for encrypted, plaintext in zip(result["encrypted"], case["plaintexts"], strict=True):
            data = bytes.fromhex(encrypted)
            assert decryptor.decrypt(data).hex() == plaintext, label
            prefix = clear_prefix_length(codec_from_name(case["codec"]), bytes.fromhex(plaintext))
            assert data[:prefix].hex() == plaintext[: 2 * prefix], label  # the clear prefix stays readable


JS_H264 = """
async (c) => {
  const m = await import('/sealrtc.js');
  const escaped = c.escapes.map(([raw, zeros]) => m.toHex(m.h264Escape(m.fromHex(raw), zeros)));
  const unescaped = c.escapes.map(([raw, zeros], i) => m.toHex(m.h264Unescape(m.fromHex(escaped[i]), zeros)));
  const normalised = c.frames.map((f) => m.toHex(m.normaliseFrame('h264', m.fromHex(f))));
  const headers = c.frames.map((f) => {
    const n = m.normaliseFrame('h264', m.fromHex(f));
    const h = m.parseSliceHeader(n, m.firstVcl(n) + 1);
    return [h.firstMb, h.sliceType, h.ppsId, h.end];
  });
  const refused = [];
  for (const bad of c.bad) {
    try { m.clearPrefixLength('h264', m.fromHex(bad)); refused.push(false); }
    catch (e) { refused.push(e.constructor.name); }
  }
  let malformed = '';
  try { m.h264Unescape(m.fromHex('aa000001')); } catch (e) { malformed = e.constructor.name; }
  return { escaped, unescaped, normalised, headers, refused, malformed };
}
"""


def _sps_without_vui() -> bytes:
    # profile 66, constraints c0, level 31, sps id 0, log2_max_frame_num-4 0, poc type 0, log2 lsb-4 2,
    # max_num_ref_frames 1, gaps 0, 20x15 MBs, frame_mbs_only, direct_8x8, no cropping, no VUI
    bits = "1" + "1" + "1" + "011" + "010" + "0" + "000010100" + "0001111" + "1" + "1" + "0" + "0" + "1"  # + stop bit
    bits += "0" * (-len(bits) % 8)
    return b"\x67\x42\xc0\x1f" + int(bits, 2).to_bytes(len(bits) // 8, "big")


async def test_h264_layout_in_the_browser_matches_python() -> None:
    escapes = [("000000", 0), ("000001", 0), ("000003", 0), ("000004", 0), ("00000000", 0), ("0000000001", 0),
               ("01", 2), ("0000", 1), (bytes(range(256)).hex() * 2, 1)]  # fmt: skip
    start = b"\x00\x00\x00\x01"
    frames = [
        start + _sps_without_vui() + b"\x00\x00\x01\x09\xf0" + start + b"\x68\xce\x38\x80" + b"\x00\x00" + start
        + b"\x65\x88\x84\x00\x10",
        *FRAMES["h264"],
    ]  # fmt: skip
    bad = ["", "0000000168ce3880", "6588", "0000000165"]
    async with serve_sample() as base, chromium() as browser:
        page = await browser.new_page(f"{base}/index.html")
        got = await page.call(JS_H264, {"escapes": escapes, "frames": [f.hex() for f in frames], "bad": bad})
    assert got["escaped"] == [h264.escape(bytes.fromhex(raw), zeros).hex() for raw, zeros in escapes]
    assert got["escaped"][:8] == ["00000300", "00000301", "00000303", "000004", "0000030000", "00000300000301",
                                  "0301", "000300"]  # fmt: skip
    assert got["unescaped"] == [raw for raw, _ in escapes]
    assert h264.restrict_sps(_sps_without_vui()) != _sps_without_vui()
    assert got["normalised"] == [h264.normalise(f).hex() for f in frames]
    for frame, header in zip(frames, got["headers"], strict=True):
        plain = h264.normalise(frame)
        parsed = h264.parse_slice_header(plain, h264.first_vcl(plain) + 1)
        assert header == [parsed.first_mb, parsed.slice_type, parsed.pps_id, parsed.end]
    assert got["refused"] == ["InvalidFrame"] * len(bad) and got["malformed"] == "InvalidFrame"


async def test_rfc9605_vectors_and_receive_rules_in_the_browser() -> None:
    vectors = {
        "header": [{"kid": str(t["kid"]), "ctr": str(t["ctr"]), "header": t["header"]} for t in VECTORS["header"]],
        "aead": VECTORS["aead"],
        "sframe": [dict(t, kid=str(t["kid"]), ctr=str(t["ctr"])) for t in VECTORS["sframe"]],
    }
    encryptor = FrameEncryptor(SharedSecret("rules", context=CONTEXT), "opus")
    frames = [encryptor.encrypt(bytes([0x78]) + bytes([i]) * 20).hex() for i in range(2)]
    async with serve_sample() as base, chromium() as browser:
        page = await browser.new_page(f"{base}/index.html")
        rfc = await page.call(JS_RFC_VECTORS, vectors, timeout=60)
        rules = await page.call(JS_RECEIVE_RULES, {"secret": "rules", "context": CONTEXT.hex(), "frames": frames})
    assert rfc["failures"] == [] and rfc["counted"] == sum(len(v) for v in vectors.values())
    assert rfc["malformed"] == 6
    same = derive_base_key("not the secret", CONTEXT).fingerprint == derive_base_key("rules", CONTEXT).fingerprint
    wrong = "authentication_failed" if same else "unknown_key"
    assert rules["reasons"] == [
        wrong,
        wrong,
        wrong,
        "ok",
        "replayed",
        "authentication_failed",
        "malformed",
        "ok",
    ], rules
    assert rules["events"] == ["secret_mismatch", "secret_match"]
    assert rules["stats"]["frames_decrypted"] == 2
    assert rules["during"] == "ok" and rules["after"] in ("unknown_key", "authentication_failed")
    assert rules["invalid"] == "InvalidSecret"


JS_KEYING_V2 = """
async (c) => {
  const m = await import('/sealrtc.js');
  const known = [];
  for (const v of c.vectors.cases) {
    const root = m.fromHex(v.root);
    let e = await m.epochZero(root, v.suite);
    const epochs = [];
    for (let i = 0; i < 4; i++) { epochs.push(m.toHex(e)); e = await m.ratchet(e, v.suite); }
    known.push({ epochs, fp2: await m.fingerprintV2(root, v.suite) });
  }
  const kid = m.kidV2(c.vectors.kid.sender_tag, c.vectors.kid.epoch, c.vectors.kid.fp2).toString(16);
  const context = m.fromHex(c.context);
  // Python's epoch export, read by a browser joiner: epochs >= 3 decrypt, epoch 2 does not.
  const joiner = m.EpochKeys.fromExport(c.export);
  const dec = new m.FrameDecryptor(joiner, 'generic');
  const joined = [];
  for (const hex of c.python_frames) {
    joined.push(await dec.decrypt(m.fromHex(hex)).then((f) => m.toHex(f.data), (e) => e.reason));
  }
  const ownExport = (await m.EpochKeys.fromSecret(c.secret, { context, suite: c.suite, epoch: 3 })).exportEpoch();
  // The browser ratchets twice while sending: Python (at epoch 0) follows.
  const sender = await m.EpochKeys.fromSecret(c.secret, { context, suite: c.suite });
  const enc = new m.FrameEncryptor(sender, 'generic');
  const sent = [];
  for (const hex of c.plaintexts) { sent.push(m.toHex(await enc.encrypt(m.fromHex(hex)))); await sender.advance(); }
  let refused = '';
  try { m.EpochKeys.fromExport({ ...c.export, key: 'AAAA' }); } catch (e) { refused = e.constructor.name; }
  return { known, kid, joined, joinerEpoch: joiner.epoch, ownExport, sent, refused };
}
"""


async def test_keying_v2_in_the_browser_matches_python_both_ways() -> None:
    from sealrtc.epochs import EpochKeys

    vectors = json.loads((Path(__file__).parent / "vectors" / "keying_v2.json").read_text())
    secret, suite = "epochs in the browser", 1
    python_sender = EpochKeys.from_secret(secret, context=CONTEXT, suite=suite, epoch=2)
    encryptor = FrameEncryptor(python_sender, "generic")
    plaintexts = [b"epoch 2", b"epoch 3", b"epoch 4"]
    python_frames = []
    for plaintext in plaintexts:
        python_frames.append(encryptor.encrypt(plaintext).hex())
        python_sender.advance()
    export = EpochKeys.from_secret(secret, context=CONTEXT, suite=suite, epoch=3).export_epoch()
    case = {"vectors": vectors, "context": CONTEXT.hex(), "secret": secret, "suite": suite, "export": export,
            "python_frames": python_frames, "plaintexts": [p.hex() for p in plaintexts]}  # fmt: skip
    async with serve_sample() as base, chromium() as browser:
        page = await browser.new_page(f"{base}/index.html")
        got = await page.call(JS_KEYING_V2, case, timeout=60)
    assert got["known"] == [{"epochs": c["epochs"], "fp2": c["fp2"]} for c in vectors["cases"]]
    assert int(got["kid"], 16) == int(vectors["kid"]["kid"], 16)
    assert got["joined"] == ["unknown_key", plaintexts[1].hex(), plaintexts[2].hex()] and got["joinerEpoch"] == 4
    assert got["ownExport"] == export and got["refused"] == "InvalidSecret"
    receiver = EpochKeys.from_secret(secret, context=CONTEXT, suite=suite)
    decryptor = FrameDecryptor(receiver, "generic")
    assert [decryptor.decrypt(bytes.fromhex(f)) for f in got["sent"]] == plaintexts
    assert receiver.epoch == 2  # followed the browser's ratchet
