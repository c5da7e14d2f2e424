// What the moderator pages (queue, dashboard) share: getting a token (URL fragment or paste
// box), telling a plain user that the page is for moderators only (the API's 403 decides), and
// the account line in the top bar.
import { api, forgetToken, storeToken, takeToken, tokenRole } from "/static/auth.js";

const $ = (id) => document.getElementById(id);

/**
 * Start a moderator page.
 * @param {object} options
 * @param {(token: string) => Promise<{ok, status, error}>} options.probe a moderator-only request:
 *   403 means "moderators only"
 * @param {(context: {token: string, user: object}) => void} options.ready show the page
 * @param {() => void} [options.stop] stop polling etc. when the token is dropped
 */
export function startStaffPage({ probe, ready, stop = () => {} }) {
  const el = {
    account: $("account"), whoami: $("whoami"), signOut: $("sign-out"),
    tokenView: $("token-view"), tokenForm: $("token-form"), tokenInput: $("token-input"),
    tokenMessage: $("token-message"), deniedView: $("denied-view"), deniedText: $("denied-text"),
    otherToken: $("other-token"), content: $("content"), loading: $("loading"),
  };

  function show(view) {
    el.loading.hidden = view !== "loading";
    el.tokenView.hidden = view !== "token";
    el.deniedView.hidden = view !== "denied";
    el.content.hidden = view !== "content";
    document.body.dataset.view = view;
  }

  function askForToken(message = "") {
    stop();
    el.account.hidden = true;
    el.tokenMessage.textContent = message;
    show("token");
    el.tokenInput.value = "";
    $("token-title").focus();
  }

  async function begin(token) {
    if (!token) {
      askForToken();
      return;
    }
    show("loading");
    const me = await api(token, "GET", "/api/auth/me");
    if (!me.ok) {
      if (me.status === 401) forgetToken();
      askForToken(
        me.status === 401
          ? "That token was refused: it is not valid here, or it has expired. Ask an operator for a new one."
          : `Could not check the token: ${me.error.message}.`,
      );
      return;
    }
    const user = me.data.user;
    el.account.hidden = false;
    const role = tokenRole(token) || user.role;
    el.whoami.textContent = `Signed in as ${user.displayName} (${role})`;
    const allowed = await probe(token);
    if (!allowed.ok && allowed.status === 403) {
      el.deniedText.textContent =
        `You are signed in as ${user.displayName}, whose role is "${role}". The server answered: ` +
        `${allowed.error.message}. Ask an operator for a moderator token.`;
      show("denied");
      $("denied-title").focus();
      return;
    }
    if (!allowed.ok && allowed.status === 401) {
      forgetToken();
      askForToken("That token was refused: it is not valid here, or it has expired.");
      return;
    }
    show("content");
    ready({ token, user, role });
  }

  el.tokenForm.addEventListener("submit", (event) => {
    event.preventDefault();
    const token = el.tokenInput.value.trim().replace(/^Bearer\s+/i, "");
    if (!token) {
      el.tokenMessage.textContent = "Paste a token first.";
      el.tokenInput.focus();
      return;
    }
    storeToken(token);
    begin(token);
  });
  const signOut = () => {
    forgetToken();
    askForToken("The token is forgotten in this tab.");
  };
  el.signOut.addEventListener("click", signOut);
  el.otherToken.addEventListener("click", signOut);

  begin(takeToken());
}
