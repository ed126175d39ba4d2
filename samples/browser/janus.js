// A minimal Janus VideoRoom client over Janus' WebSocket API (subprotocol "janus-protocol").
// Publishers put "e2ee": true in the jsep (require_e2ee rooms need it); offers and answers are
// sent after ICE gathering completes (no trickle).

const KEEPALIVE_MS = 25000;
const TIMEOUT_MS = 10000;

function transactionId() {
  return Array.from(crypto.getRandomValues(new Uint8Array(8)), (b) => b.toString(16).padStart(2, "0")).join("");
}

export class JanusError extends Error {
  constructor(code, reason) {
    super(`Janus error ${code}: ${reason}`);
    this.code = code;
  }
}

export async function gathered(pc) {
  if (pc.iceGatheringState === "complete") return;
  await new Promise((resolve) => {
    const check = () => {
      if (pc.iceGatheringState === "complete") {
        pc.removeEventListener("icegatheringstatechange", check);
        resolve();
      }
    };
    pc.addEventListener("icegatheringstatechange", check);
    setTimeout(resolve, 5000); // gather what we have after 5 s
  });
}

export class JanusSession {
  static async connect(url) {
    const self = new JanusSession();
    self.pending = new Map();
    self.ws = new WebSocket(url, "janus-protocol");
    await new Promise((resolve, reject) => {
      self.ws.onopen = resolve;
      self.ws.onerror = () => reject(new Error(`cannot reach Janus at ${url}`));
    });
    self.ws.onmessage = (event) => self._dispatch(JSON.parse(event.data));
    self.ws.onclose = () => {
      for (const { reject } of self.pending.values()) reject(new Error("lost the connection to Janus"));
      self.pending.clear();
      clearInterval(self.keepalive);
    };
    const created = await self.send({ janus: "create" });
    self.id = created.data.id;
    self.keepalive = setInterval(() => self.ws.send(JSON.stringify({ janus: "keepalive", session_id: self.id, transaction: transactionId() })), KEEPALIVE_MS);
    return self;
  }

  _dispatch(msg) {
    const entry = this.pending.get(msg.transaction);
    if (!entry || msg.janus === "ack") return;
    this.pending.delete(msg.transaction);
    if (msg.janus === "error") return entry.reject(new JanusError(msg.error.code, msg.error.reason));
    const data = msg.plugindata && msg.plugindata.data;
    if (data && data.error_code) return entry.reject(new JanusError(data.error_code, data.error));
    return entry.resolve(msg);
  }

  /** Send a request; resolve with its "success" or plugin "event" (registered before sending). */
  send(message) {
    const transaction = transactionId();
    const full = { ...message, transaction };
    if (this.id !== undefined) full.session_id = this.id;
    return new Promise((resolve, reject) => {
      this.pending.set(transaction, { resolve, reject });
      setTimeout(() => {
        if (this.pending.delete(transaction)) reject(new Error(`Janus did not answer ${message.janus}`));
      }, TIMEOUT_MS);
      this.ws.send(JSON.stringify(full));
    });
  }

  async attach() {
    const attached = await this.send({ janus: "attach", plugin: "janus.plugin.videoroom" });
    return attached.data.id;
  }

  message(handle, body, jsep) {
    return this.send({ janus: "message", handle_id: handle, body, ...(jsep ? { jsep } : {}) });
  }

  async close() {
    clearInterval(this.keepalive);
    if (this.ws.readyState === WebSocket.OPEN) {
      await this.send({ janus: "destroy" }).catch(() => undefined);
      this.ws.close();
    }
  }
}

/** Join `room` as a publisher and publish `pc`'s tracks (E2EE flag in the jsep). */
export async function publish(session, room, pc, { e2ee = true, display = "browser" } = {}) {
  const handle = await session.attach();
  await session.message(handle, { request: "join", ptype: "publisher", room, display });
  await pc.setLocalDescription(await pc.createOffer());
  await gathered(pc);
  const jsep = { type: "offer", sdp: pc.localDescription.sdp, ...(e2ee ? { e2ee: true } : {}) };
  const reply = await session.message(handle, { request: "publish" }, jsep);
  await pc.setRemoteDescription({ type: "answer", sdp: reply.jsep.sdp });
  return handle;
}

/** Wait for a publisher in `room`, subscribe to it with `pc`; returns the handle. */
export async function subscribe(session, room, pc) {
  const handle = await session.attach();
  let feed = null;
  const end = performance.now() + TIMEOUT_MS;
  while (feed === null) {
    const list = await session.message(handle, { request: "listparticipants", room });
    const publisher = (list.plugindata.data.participants || []).find((p) => p.publisher);
    if (publisher) feed = publisher.id;
    else if (performance.now() > end) throw new Error(`no publisher in room ${room}`);
    else await new Promise((resolve) => setTimeout(resolve, 200));
  }
  const joined = await session.message(handle, { request: "join", ptype: "subscriber", room, streams: [{ feed }] });
  await pc.setRemoteDescription({ type: "offer", sdp: joined.jsep.sdp });
  await pc.setLocalDescription(await pc.createAnswer());
  await gathered(pc);
  await session.message(handle, { request: "start" }, { type: "answer", sdp: pc.localDescription.sdp });
  return handle;
}
