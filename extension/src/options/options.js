/** The options page: which gate the supporter's account lives on. */

import { normaliseGateUrl } from "../lib/origins.js";
import { localise, send, t } from "../lib/ui.js";

const input = document.getElementById("gate-url");
const message = document.getElementById("message");

function say(text, error = false) {
  message.textContent = text;
  message.classList.toggle("error", error);
}

async function start() {
  localise();
  const status = await send({ type: "status" });
  if (!status.ok) return say(status.error.message, true);
  input.value = status.gate;
  document.getElementById("gate-form").addEventListener("submit", async (event) => {
    event.preventDefault();
    const gate = normaliseGateUrl(input.value);
    if (gate === null) return say(t("gateInvalid"), true);
    const current = await send({ type: "status" });
    if (current.ok && current.gate !== gate && (current.signedIn || current.sites.length > 0)) {
      if (!window.confirm(t("gateChangeConfirm"))) return undefined;
    }
    const answer = await send({ type: "set-gate", gate });
    if (!answer.ok) return say(answer.error.message, true);
    input.value = answer.gate;
    return say(t("gateSaved", answer.gate));
  });
  document.body.dataset.ready = "true";
  return undefined;
}

start();
