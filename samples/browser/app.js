// The sample page: publish (camera + microphone) or subscribe, end-to-end encrypted with the
// session secret, over WHIP/WHEP (the third-party whip-whep client, vendored) or Janus VideoRoom.
// The secret is read from the form, handed to the transform worker and cleared from the field;
// nothing is stored (no cookies, no storage) and nothing logs it.

import { WHEPClient } from "./vendor/whip-whep/whep.js";
import { WHIPClient } from "./vendor/whip-whep/whip.js";
import * as janus from "./janus.js";

const $ = (id) => document.getElementById(id);

const state = {
  worker: null,
  pc: null,
  client: null, // WHIPClient | WHEPClient
  janus: null,
  stream: null,
  streams: [], // worker stats per transform
  events: [],
  status: "idle",
  error: null,
};

function show() {
  $("status").textContent = state.error ? `${state.status}: ${state.error}` : state.status;
  $("stats").textContent = state.streams
    .map((s) => `${s.operation} ${s.kind} ${s.codec || "-"}: in ${s.frames_in}, out ${s.frames_out}, dropped ${s.frames_dropped}`)
    .join("\n");
  $("events").textContent = state.events.map((e) => `${e.event} (${e.kind})`).join("\n");
}

function startWorker(keying) {
  const worker = new Worker(new URL("./worker.js", import.meta.url), { type: "module" });
  worker.onmessage = ({ data }) => {
    if (data.type === "stats") state.streams = data.streams;
    else if (data.type === "event") state.events.push(data);
    else if (data.type === "error") state.error = data.message;
    show();
  };
  worker.postMessage(keying);
  return worker;
}

/** Offer only the chosen codec: VP8, or H.264 constrained baseline in packetization-mode 1 (the
 * only H.264 every peer of sealrtc decodes); Opus for audio. */
function preferCodecs(transceiver, kind, videoCodec = "vp8") {
  const wanted = kind === "video" ? `video/${videoCodec}` : "audio/opus";
  const caps = RTCRtpReceiver.getCapabilities(kind);
  const fits = (c) => {
    if (c.mimeType.toLowerCase() !== wanted) return false;
    if (wanted !== "video/h264") return true;
    const fmtp = c.sdpFmtpLine || "";
    return /packetization-mode=1/.test(fmtp) && /profile-level-id=42[0-9a-f]{2}1f/i.test(fmtp);
  };
  const codecs = caps ? caps.codecs.filter(fits) : [];
  if (codecs.length && transceiver.setCodecPreferences) transceiver.setCodecPreferences(codecs);
}

let transformIds = 0;
function transform(kind, operation) {
  transformIds += 1;
  return new RTCRtpScriptTransform(state.worker, { operation, kind, id: `${operation}-${kind}-${transformIds}` });
}

/**
 * Start a session. options: {mode: "publish" | "subscribe", transport: "whip" | "janus",
 * url, room, secret, context, suite, videoCodec: "vp8" | "h264", keying: 1 | 2, epoch}. WHIP/WHEP urls are the endpoint (…/whip/ROOM or …/whep/ROOM).
 * `keying: 2` ratchets key epochs from the secret; `epoch` (an epoch file's object, from `sealrtc
 * keys export`) is keying v2 without the secret: it reads that epoch and later ones only.
 */
export async function start(options) {
  await stop();
  const { mode, transport, url, secret } = options;
  const videoCodec = options.videoCodec === "h264" ? "h264" : "vp8";
  if (!secret && !options.epoch) throw new Error("the E2EE secret must not be empty");
  state.status = "starting";
  state.error = null;
  state.events = [];
  state.streams = [];
  show();
  state.worker = startWorker(
    options.epoch
      ? { type: "epoch", epoch: options.epoch }
      : {
          type: "secret",
          secret,
          context: options.context || "",
          suite: Number(options.suite) || undefined,
          keying: Number(options.keying) === 2 ? 2 : 1,
        },
  );
  // Camera/microphone permission also lets WebRTC offer every local interface (not just the default route).
  state.stream = await navigator.mediaDevices.getUserMedia({ audio: true, video: { width: 640, height: 480 } });
  const pc = new RTCPeerConnection({ iceServers: [], bundlePolicy: "max-bundle" });
  state.pc = pc;
  if (mode === "publish") {
    for (const track of state.stream.getTracks()) {
      const transceiver = pc.addTransceiver(track, { direction: "sendonly", streams: [state.stream] });
      preferCodecs(transceiver, track.kind, videoCodec);
      transceiver.sender.transform = transform(track.kind, "encrypt");
    }
    $("local").srcObject = state.stream;
  } else {
    for (const track of state.stream.getTracks()) track.stop();
    pc.ontrack = (event) => {
      // WHEP receivers got their transform before negotiation: with Chromium 156, a transform set
      // here after applying an *answer* never saw a frame. Janus' *offer* creates receivers, and
      // a transform set here works.
      if (!event.receiver.transform) event.receiver.transform = transform(event.track.kind, "decrypt");
      const media = $(event.track.kind === "video" ? "remote" : "remote-audio");
      media.srcObject = new MediaStream([event.track]);
      media.play().catch(() => undefined);
    };
    if (transport !== "janus") {
      for (const kind of ["audio", "video"]) {
        const transceiver = pc.addTransceiver(kind, { direction: "recvonly" });
        preferCodecs(transceiver, kind, videoCodec);
        transceiver.receiver.transform = transform(kind, "decrypt");
      }
    }
  }
  if (transport === "janus") {
    state.janus = await janus.JanusSession.connect(url);
    const room = Number(options.room);
    if (mode === "publish") await janus.publish(state.janus, room, pc, { e2ee: true });
    else await janus.subscribe(state.janus, room, pc);
  } else if (mode === "publish") {
    state.client = new WHIPClient();
    await state.client.publish(pc, url);
  } else {
    state.client = new WHEPClient();
    await state.client.view(pc, url);
  }
  state.status = mode === "publish" ? "publishing" : "subscribing";
  show();
}

/** Keying v2: move to the next key epoch (receivers follow by themselves). */
export function advanceEpoch() {
  if (state.worker) state.worker.postMessage({ type: "advance-epoch" });
}

/** Change the secret on the fly: new KID for senders, the old one decrypts for its grace period. */
export function setSecret(secret) {
  if (state.worker && secret) state.worker.postMessage({ type: "set-secret", secret });
}

export async function stop() {
  const { client, pc, worker, stream } = state;
  state.client = null;
  state.pc = null;
  state.worker = null;
  state.stream = null;
  if (client) await client.stop().catch(() => undefined); // DELETEs the WHIP/WHEP session
  if (state.janus) {
    const session = state.janus;
    state.janus = null;
    await session.close();
  }
  if (pc) pc.close();
  if (stream) for (const track of stream.getTracks()) track.stop();
  if (worker) worker.terminate();
  if (state.status !== "idle") state.status = "stopped";
  show();
}

/** Per-kind inbound/outbound numbers from getStats plus the worker's counters. */
export async function stats() {
  const out = { status: state.status, error: state.error, events: state.events, worker: state.streams, rtp: {} };
  if (state.pc) {
    const report = await state.pc.getStats();
    report.forEach((s) => {
      if (s.type === "inbound-rtp" || s.type === "outbound-rtp") {
        out.rtp[`${s.type}-${s.kind}`] = {
          packets: s.packetsReceived ?? s.packetsSent,
          framesDecoded: s.framesDecoded,
          framesEncoded: s.framesEncoded,
          framesReceived: s.framesReceived,
          keyFramesDecoded: s.keyFramesDecoded,
        };
      }
    });
    out.connectionState = state.pc.connectionState;
  }
  return out;
}

/** Average RGB of small blocks of the rendered remote video at relative positions [[x, y], ...]. */
export function snapshot(points) {
  const video = $("remote");
  const { videoWidth: w, videoHeight: h } = video;
  if (!w || !h) return null;
  const canvas = $("canvas");
  canvas.width = w;
  canvas.height = h;
  const ctx = canvas.getContext("2d", { willReadFrequently: true });
  ctx.drawImage(video, 0, 0, w, h);
  return {
    width: w,
    height: h,
    points: points.map(([x, y]) => {
      const px = Math.min(w - 5, Math.max(0, Math.round(x * w) - 2));
      const py = Math.min(h - 5, Math.max(0, Math.round(y * h) - 2));
      const data = ctx.getImageData(px, py, 5, 5).data;
      const rgb = [0, 0, 0];
      for (let i = 0; i < data.length; i += 4) for (let c = 0; c < 3; c++) rgb[c] += data[i + c] / 25;
      return rgb.map(Math.round);
    }),
  };
}

function fromForm() {
  const secretField = $("secret");
  const options = {
    mode: $("mode").value,
    transport: $("transport").value,
    url: $("url").value,
    room: $("room").value,
    context: $("context").value,
    suite: $("suite").value,
    videoCodec: $("video-codec").value,
    secret: secretField.value,
  };
  secretField.value = ""; // the secret now lives only in the worker
  return options;
}

export function startFromForm() {
  return start(fromForm()).catch((exc) => {
    state.status = "failed";
    state.error = exc.message;
    show();
  });
}

window.sealrtc = { start, stop, stats, snapshot, setSecret, advanceEpoch, startFromForm, state };
$("form").addEventListener("submit", (event) => {
  event.preventDefault();
  startFromForm();
});
$("stop").addEventListener("click", () => stop());
$("rotate").addEventListener("click", () => {
  setSecret($("secret").value);
  $("secret").value = "";
});
show();
