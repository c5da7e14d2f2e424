// The chat panel: messages, the composer, and the typing indicator in both directions.
// Every user-provided string goes in with textContent.

const TYPING_IDLE_MS = 2000; // "typing: false" after this long without input
const TYPING_SHOWN_MS = 6000; // hide the partner's indicator if their "false" never comes

function clock(iso) {
  const date = iso ? new Date(iso) : new Date();
  return Number.isNaN(date.getTime()) ? "" : date.toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" });
}

export class Chat {
  /**
   * @param {object} options
   * @param {(event: string, payload: object) => Promise<object>} options.request emit with ack
   * @param {() => string|null} options.matchId the open match, or null
   */
  constructor({ request, matchId }) {
    this._request = request;
    this._matchId = matchId;
    this.list = document.getElementById("messages");
    this.typingLine = document.getElementById("typing");
    this.form = document.getElementById("chat-form");
    this.input = document.getElementById("chat-input");
    this.sendButton = document.getElementById("chat-send");
    this.partnerName = "";
    this._typingSent = false;
    this._idleTimer = null;
    this._shownTimer = null;

    this.form.addEventListener("submit", (event) => {
      event.preventDefault();
      this.send();
    });
    this.input.addEventListener("input", () => this._typed());
    this.input.addEventListener("blur", () => this._stopTyping());
  }

  /** A new partner: empty the list, enable the composer. */
  reset(partnerName) {
    this.partnerName = partnerName;
    this.list.replaceChildren();
    this.input.value = "";
    this._clearTyping();
    this._typingSent = false;
    clearTimeout(this._idleTimer);
  }

  setEnabled(enabled) {
    this.input.disabled = !enabled;
    this.sendButton.disabled = !enabled;
    if (!enabled) {
      clearTimeout(this._idleTimer);
      this._typingSent = false;
      this._clearTyping();
    }
  }

  get hasMessages() {
    return this.list.children.length > 0;
  }

  /** A chat:message from the server. */
  received(message) {
    this._clearTyping();
    this._append("theirs", this.partnerName || "Partner", message.text, message.sentAt);
  }

  /** A chat:typing from the server. */
  partnerTyping(typing) {
    clearTimeout(this._shownTimer);
    if (!typing) {
      this._clearTyping();
      return;
    }
    this.typingLine.textContent = `${this.partnerName || "Your partner"} is typing…`;
    this._shownTimer = setTimeout(() => this._clearTyping(), TYPING_SHOWN_MS);
  }

  /** A line from the app itself (not a message), e.g. "Alex left the call." */
  notice(text) {
    const item = document.createElement("li");
    item.className = "notice";
    item.textContent = text;
    this.list.append(item);
    this._scroll();
  }

  async send() {
    const text = this.input.value;
    const matchId = this._matchId();
    if (!text.trim() || !matchId) return;
    this.input.value = "";
    this._stopTyping();
    const item = this._append("mine pending", "You", text, null);
    let answer;
    try {
      answer = await this._request("chat:send", { matchId, text });
    } catch (error) {
      answer = { ok: false, error: { message: "no answer from the server" } };
    }
    item.classList.remove("pending");
    if (answer.ok) {
      item.querySelector("time").textContent = clock(answer.message && answer.message.sentAt);
    } else {
      item.classList.add("failed");
      const note = document.createElement("span");
      note.className = "error";
      note.textContent = `Not sent: ${answer.error ? answer.error.message : "unknown error"}`;
      item.append(note);
    }
  }

  _append(kind, who, text, sentAt) {
    const item = document.createElement("li");
    item.className = `msg ${kind}`;
    const name = document.createElement("span");
    name.className = "who";
    name.textContent = who;
    const time = document.createElement("time");
    time.textContent = sentAt ? clock(sentAt) : "";
    const body = document.createElement("p");
    body.className = "text";
    body.textContent = text;
    item.append(name, time, body);
    this.list.append(item);
    this._scroll();
    return item;
  }

  _scroll() {
    this.list.scrollTop = this.list.scrollHeight;
  }

  _typed() {
    clearTimeout(this._idleTimer);
    if (!this.input.value) {
      this._stopTyping();
      return;
    }
    if (!this._typingSent) {
      this._typingSent = true;
      this._sendTyping(true);
    }
    this._idleTimer = setTimeout(() => this._stopTyping(), TYPING_IDLE_MS);
  }

  _stopTyping() {
    clearTimeout(this._idleTimer);
    if (this._typingSent) {
      this._typingSent = false;
      this._sendTyping(false);
    }
  }

  _sendTyping(typing) {
    const matchId = this._matchId();
    if (!matchId) return;
    this._request("chat:typing", { matchId, typing }).catch(() => {});
  }

  _clearTyping() {
    clearTimeout(this._shownTimer);
    this.typingLine.textContent = "";
  }
}
