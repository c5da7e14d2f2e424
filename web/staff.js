// What the moderator pages (queue, dashboard) share: the top bar with its navigation and
// account line, getting a token (URL fragment or paste box), and telling a plain user that the
// page is for moderators only (the API's 403 decides). The pages hold only their own content;
// the shared parts are built here, once.
import { api, forgetToken, make, storeToken, takeToken, tokenRole } from "/static/auth.js";

const $ = (id) => document.getElementById(id);

const PAGES = [
  { href: "/", label: "Match page" },
  { href: "/static/moderate.html", label: "Moderation queue" },
  { href: "/static/dashboard.html", label: "Dashboard" },
];

function withId(node, id) {
  node.id = id;
  return node;
}

function code(text) {
  return make("code", "", text);
}

/** The top bar: brand, the staff pages (this one marked), and the account line. */
function buildTopbar(header, path) {
  const nav = make("nav", "page-nav");
  nav.setAttribute("aria-label", "Pages");
  for (const page of PAGES) {
    const link = make("a", "", page.label);
    link.href = page.href;
    if (page.href === path) link.setAttribute("aria-current", "page");
    nav.append(link);
  }
  const account = withId(make("span", "account"), "account");
  account.hidden = true;
  const signOut = withId(make("button", "quiet", "Forget token"), "sign-out");
  signOut.type = "button";
  account.append(withId(make("span"), "whoami"), " ", signOut);
  header.append(make("span", "brand", "Pairwire"), nav, account);
}

/** The paste-a-token and moderators-only panels, placed before the page's own content. */
function buildGate(content, { path, noun, role }) {
  const tokenView = withId(make("section", "panel"), "token-view");
  tokenView.setAttribute("aria-labelledby", "token-title");
  tokenView.hidden = true;
  const tokenTitle = withId(make("h1", "", "Moderator sign-in"), "token-title");
  tokenTitle.tabIndex = -1;
  const intro = make("p");
  intro.append(
    `The ${noun} is for moderators and admins. Paste the token an operator made for you (`,
    code(`pairwire token --user YOUR-ID --role ${role}`),
    "), or open this page as ",
    code(`${path}#token=…`),
    ".",
  );
  const form = withId(make("form"), "token-form");
  form.autocomplete = "off";
  const label = make("label", "", "Token");
  label.htmlFor = "token-input";
  const input = withId(make("textarea"), "token-input");
  input.rows = 3;
  input.spellcheck = false;
  input.setAttribute("autocapitalize", "off");
  const use = make("button", "", "Use this token");
  use.type = "submit";
  form.append(label, input, use);
  const message = withId(make("p", "message"), "token-message");
  message.setAttribute("role", "alert");
  tokenView.append(tokenTitle, intro, form, message);

  const deniedView = withId(make("section", "panel"), "denied-view");
  deniedView.setAttribute("aria-labelledby", "denied-title");
  deniedView.hidden = true;
  const deniedTitle = withId(make("h1", "", "Moderators only"), "denied-title");
  deniedTitle.tabIndex = -1;
  const other = withId(make("button", "", "Use a different token"), "other-token");
  other.type = "button";
  deniedView.append(deniedTitle, make("p", "", `This ${noun} is for moderators and admins only.`),
    withId(make("p"), "denied-text"), other);
  content.before(tokenView, deniedView);
}

/**
 * Start a moderator page: build its top bar and sign-in panels, then check the token.
 * @param {object} options
 * @param {{path: string, noun: string, role: string}} options.page where the page lives, what
 *   the panels call it ("moderation queue"), and the role the sign-in hint suggests
 * @param {(token: string) => Promise<{ok, status, error}>} options.probe a moderator-only request:
 *   403 means "moderators only"
 * @param {(context: {token: string, user: object}) => void} options.ready show the page
 * @param {() => void} [options.stop] stop polling etc. when the token is dropped
 */
export function startStaffPage({ page, probe, ready, stop = () => {} }) {
  buildTopbar($("topbar"), page.path);
  buildGate($("content"), page);
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
