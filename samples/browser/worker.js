// The RTCRtpScriptTransform worker: frame format v1 on every sender and receiver it is given.
//
// The page posts {type: "secret", secret, context, suite, keying} (keying 2: key epochs) or
// {type: "epoch", epoch: <an epoch file's object>} (keying v2 without the secret), and later
// {type: "set-secret"} (keying v1) or {type: "advance-epoch"} (keying v2);
// transforms are created with options {operation: "encrypt" | "decrypt", kind, id}.
// The worker posts {type: "stats", ...} (throttled) and {type: "event", ...} (secret_mismatch /
// secret_match) back. The secret lives only in this worker's memory and is never posted back.

import {
  DecryptError,
  EpochKeys,
  FrameDecryptor,
  FrameEncryptor,
  SharedSecret,
  codecFromName,
  normaliseFrame,
} from "./sealrtc.js";

const KEYFRAME_REQUEST_INTERVAL = 1000; // ms: recovery asks for a key frame at most once a second
const STATS_INTERVAL = 200;

let keys = null;
let resolveKeys;
const keysReady = new Promise((resolve) => {
  resolveKeys = resolve;
});
const streams = new Map(); // id -> stats record

self.onmessage = async (event) => {
  const msg = event.data;
  try {
    if (msg.type === "secret" && keys === null) {
      const options = { context: new TextEncoder().encode(msg.context || ""), suite: msg.suite || undefined };
      keys = msg.keying === 2 ? await EpochKeys.fromSecret(msg.secret, options) : await SharedSecret.create(msg.secret, options);
      resolveKeys(keys);
      self.postMessage({ type: "ready", fingerprint: keys.current.fingerprint });
    } else if (msg.type === "epoch" && keys === null) {
      keys = EpochKeys.fromExport(msg.epoch);
      resolveKeys(keys);
      self.postMessage({ type: "ready", fingerprint: keys.current.fingerprint, epoch: keys.epoch });
    } else if (msg.type === "advance-epoch" && keys instanceof EpochKeys) {
      self.postMessage({ type: "advanced", epoch: await keys.advance() });
    } else if (msg.type === "set-secret" && keys !== null) {
      await keys.setSecret(msg.secret);
      self.postMessage({ type: "rotated", fingerprint: keys.current.fingerprint });
    } else if (msg.type === "add-decryption-secret" && keys !== null) {
      await keys.addDecryptionSecret(msg.secret);
    }
  } catch (exc) {
    self.postMessage({ type: "error", message: exc.name }); // never the secret
  }
};

function codecOf(frame, kind) {
  const mime = frame.getMetadata ? frame.getMetadata().mimeType : undefined;
  return codecFromName(mime || (kind === "audio" ? "opus" : "vp8"));
}

function record(id, operation, kind) {
  const stats = {
    id,
    operation,
    kind,
    codec: null,
    frames_in: 0,
    frames_out: 0,
    frames_dropped: 0,
    decrypt_failures: {},
    kid: null,
  };
  streams.set(id, stats);
  return stats;
}

let statsTimer = null;
function publishStats() {
  if (statsTimer !== null) return;
  statsTimer = setTimeout(() => {
    statsTimer = null;
    self.postMessage({ type: "stats", streams: [...streams.values()].map((s) => ({ ...s })) });
  }, STATS_INTERVAL);
}

function encryptStream(transformer, stats) {
  const encryptors = new Map(); // codec -> FrameEncryptor
  return new TransformStream({
    async transform(frame, controller) {
      const k = await keysReady;
      const codec = codecOf(frame, stats.kind);
      stats.codec = codec;
      stats.frames_in += 1;
      let encryptor = encryptors.get(codec);
      if (!encryptor) encryptors.set(codec, (encryptor = new FrameEncryptor(k, codec)));
      try {
        // H.264: normalised first (start codes, no AUD, an SPS no receiver rewrites), as sealrtc does.
        frame.data = (await encryptor.encrypt(normaliseFrame(codec, new Uint8Array(frame.data)))).buffer;
      } catch {
        stats.frames_dropped += 1; // fail closed: never send a frame in clear
        publishStats();
        return;
      }
      stats.kid = encryptor.kid.toString();
      if (encryptor.takeKeyframeRequest() && transformer.generateKeyFrame) {
        transformer.generateKeyFrame().catch(() => undefined);
      }
      stats.frames_out += 1;
      controller.enqueue(frame);
      publishStats();
    },
  });
}

function decryptStream(transformer, stats) {
  const decryptors = new Map(); // codec -> FrameDecryptor
  let lastRequest = -Infinity;
  const requestKeyframe = () => {
    const now = performance.now();
    if (now - lastRequest < KEYFRAME_REQUEST_INTERVAL || !transformer.sendKeyFrameRequest) return;
    lastRequest = now;
    transformer.sendKeyFrameRequest().catch(() => undefined);
  };
  const onEvent = (event) => {
    self.postMessage({ type: "event", event: event.type, kind: stats.kind, id: stats.id, kid: String(event.kid) });
    if (event.type === "secret_match") requestKeyframe();
  };
  return new TransformStream({
    async transform(frame, controller) {
      const k = await keysReady;
      const codec = codecOf(frame, stats.kind);
      stats.codec = codec;
      stats.frames_in += 1;
      let decryptor = decryptors.get(codec);
      if (!decryptor) decryptors.set(codec, (decryptor = new FrameDecryptor(k, codec, { onEvent })));
      try {
        const plain = await decryptor.decrypt(new Uint8Array(frame.data));
        frame.data = plain.data.buffer;
        stats.kid = plain.kid.toString();
      } catch (exc) {
        // Dropped, counted, never handed to the decoder.
        const reason = exc instanceof DecryptError ? exc.reason : "error";
        stats.decrypt_failures[reason] = (stats.decrypt_failures[reason] || 0) + 1;
        stats.frames_dropped += 1;
        publishStats();
        return;
      }
      stats.frames_out += 1;
      controller.enqueue(frame);
      publishStats();
    },
  });
}

self.onrtctransform = (event) => {
  const transformer = event.transformer;
  const { operation, kind, id } = transformer.options;
  const stats = record(id, operation, kind);
  const transform = operation === "encrypt" ? encryptStream(transformer, stats) : decryptStream(transformer, stats);
  transformer.readable.pipeThrough(transform).pipeTo(transformer.writable).catch(() => undefined);
};
