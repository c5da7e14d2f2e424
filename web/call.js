// One WebRTC peer connection for one match (a resumed match gets a new PeerCall).
//
// Roles come from match:found: the initiator sends the offer, the other side answers; only
// the initiator ever offers, so there is no glare to resolve. Signalling data is
// browser-shaped: {type, sdp} for offer/answer and RTCIceCandidateInit for candidates.
// Offers carry an extra `pairwireOfferId` that answers echo (the bots do the same): an
// answer to an offer of an earlier, rebuilt connection is recognised and dropped.

const OFFER_ID = "pairwireOfferId";

/** Only what the server handed out, copied member by member: never a default server. */
export function iceConfiguration(iceServers) {
  const servers = [];
  for (const server of Array.isArray(iceServers) ? iceServers : []) {
    if (!server || (typeof server.urls !== "string" && !Array.isArray(server.urls))) continue;
    const entry = { urls: server.urls };
    if (typeof server.username === "string") entry.username = server.username;
    if (typeof server.credential === "string") entry.credential = server.credential;
    servers.push(entry);
  }
  return { iceServers: servers };
}

function randomId() {
  const bytes = new Uint8Array(8);
  crypto.getRandomValues(bytes);
  return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
}

export class PeerCall {
  /**
   * @param {object} options
   * @param {Array} options.iceServers from match:found
   * @param {boolean} options.initiator
   * @param {MediaStream|null} options.localStream
   * @param {(kind: string, data: object) => Promise<unknown>} options.sendSignal
   * @param {(stream: MediaStream) => void} options.onRemoteStream
   * @param {(state: string) => void} options.onConnectionState
   */
  constructor({ iceServers, initiator, localStream, sendSignal, onRemoteStream, onConnectionState }) {
    this.initiator = initiator;
    this.closed = false;
    this._sendSignal = sendSignal;
    this._onRemoteStream = onRemoteStream;
    this._onConnectionState = onConnectionState;
    this._offerId = null;
    this._answeredOfferId = null;
    this._pendingCandidates = [];
    this._incoming = Promise.resolve(); // incoming signals, applied one at a time
    this._outgoing = Promise.resolve(); // outgoing signals, sent in order (offer before candidates)
    this._remoteStream = new MediaStream();

    const pc = (this.pc = new RTCPeerConnection(iceConfiguration(iceServers)));
    if (localStream && localStream.getTracks().length) {
      for (const track of localStream.getTracks()) pc.addTrack(track, localStream);
    } else {
      // No camera (denied, or a resumed call on a reloaded page): still receive.
      pc.addTransceiver("audio", { direction: "recvonly" });
      pc.addTransceiver("video", { direction: "recvonly" });
    }
    pc.addEventListener("icecandidate", (event) => {
      // null marks the end of candidates: nothing to relay.
      if (event.candidate && event.candidate.candidate) this._send("candidate", event.candidate.toJSON());
    });
    pc.addEventListener("track", (event) => {
      if (!this._remoteStream.getTracks().includes(event.track)) this._remoteStream.addTrack(event.track);
      this._onRemoteStream(this._remoteStream);
    });
    pc.addEventListener("connectionstatechange", () => {
      if (!this.closed) this._onConnectionState(pc.connectionState);
    });
  }

  /** The initiator sends its offer; the other side waits for it. */
  async start() {
    if (!this.initiator || this.closed) return;
    this._offerId = randomId();
    const offer = await this.pc.createOffer();
    if (this.closed) return;
    await this.pc.setLocalDescription(offer);
    if (this.closed) return;
    const local = this.pc.localDescription;
    this._send("offer", { type: local.type, sdp: local.sdp, [OFFER_ID]: this._offerId });
  }

  /** True when `kind` is an offer this connection can no longer take: the partner rebuilt. */
  isRenegotiation(kind) {
    return kind === "offer" && !this.initiator && this.pc.remoteDescription !== null;
  }

  /** Apply one signal from the partner (serialised; errors are reported, never thrown). */
  handleSignal(kind, data) {
    this._incoming = this._incoming
      .then(() => this._apply(kind, data))
      .catch((error) => console.warn(`pairwire: ${kind} from the partner could not be applied`, error));
    return this._incoming;
  }

  async _apply(kind, data) {
    if (this.closed || !data || typeof data !== "object") return;
    const pc = this.pc;
    if (kind === "offer") {
      if (this.initiator) return; // only the initiator offers
      await pc.setRemoteDescription({ type: "offer", sdp: data.sdp });
      this._answeredOfferId = typeof data[OFFER_ID] === "string" ? data[OFFER_ID] : null;
      await this._flushCandidates();
      const answer = await pc.createAnswer();
      if (this.closed) return;
      await pc.setLocalDescription(answer);
      if (this.closed) return;
      const local = pc.localDescription;
      const reply = { type: local.type, sdp: local.sdp };
      if (this._answeredOfferId) reply[OFFER_ID] = this._answeredOfferId;
      this._send("answer", reply);
    } else if (kind === "answer") {
      const echoed = data[OFFER_ID];
      if (typeof echoed === "string" && echoed !== this._offerId) return; // answers an older offer
      if (pc.signalingState !== "have-local-offer") return;
      await pc.setRemoteDescription({ type: "answer", sdp: data.sdp });
      await this._flushCandidates();
    } else if (kind === "candidate") {
      if (!data.candidate) return; // end of candidates
      if (pc.remoteDescription === null) {
        this._pendingCandidates.push(data); // overtook its offer/answer
        return;
      }
      await this._addCandidate(data);
    }
  }

  async _flushCandidates() {
    const pending = this._pendingCandidates;
    this._pendingCandidates = [];
    for (const candidate of pending) await this._addCandidate(candidate);
  }

  async _addCandidate(init) {
    try {
      await this.pc.addIceCandidate(init);
    } catch (error) {
      // A candidate of an earlier connection (different ICE credentials): harmless.
      console.debug("pairwire: ICE candidate ignored", error);
    }
  }

  _send(kind, data) {
    this._outgoing = this._outgoing
      .then(() => (this.closed ? undefined : this._sendSignal(kind, data)))
      .catch((error) => console.warn(`pairwire: sending ${kind} failed`, error));
  }

  /** Inbound video counters of this connection (for the page and for tests). */
  async stats() {
    const result = { framesDecoded: 0, framesReceived: 0, bytesReceived: 0, connectionState: this.pc.connectionState };
    if (this.closed) return result;
    const report = await this.pc.getStats();
    report.forEach((entry) => {
      if (entry.type === "inbound-rtp" && entry.kind === "video") {
        result.framesDecoded += entry.framesDecoded || 0;
        result.framesReceived += entry.framesReceived || 0;
        result.bytesReceived += entry.bytesReceived || 0;
      }
    });
    return result;
  }

  close() {
    if (this.closed) return;
    this.closed = true;
    this._pendingCandidates = [];
    this.pc.close();
  }
}
