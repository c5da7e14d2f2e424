// Guest sign-in. User text is only ever set with textContent, never as HTML.
const form = document.getElementById("guest");
const status = document.getElementById("status");

form.addEventListener("submit", async (event) => {
  event.preventDefault();
  const data = new FormData(form);
  const body = {
    displayName: data.get("displayName"),
    topics: String(data.get("topics") || "").split(",").map((t) => t.trim()).filter(Boolean),
  };
  if (data.get("seniority")) body.seniority = data.get("seniority");
  const response = await fetch("/api/auth/guest", {
    method: "POST",
    headers: { "Content-Type": "application/json" },
    body: JSON.stringify(body),
  });
  const answer = await response.json();
  if (!response.ok) {
    status.textContent = `Could not sign in: ${answer.error.message}`;
    return;
  }
  sessionStorage.setItem("pairwire.token", answer.token);
  status.textContent = `Signed in as ${answer.user.displayName}.`;
});
