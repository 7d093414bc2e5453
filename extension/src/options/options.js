/** The options page: which gate the supporter's account lives on. */

import { normaliseGateUrl } from "../lib/origins.js";
import { localise, say, send, t } from "../lib/ui.js";

const input = document.getElementById("gate-url");

async function start() {
  localise();
  const status = await send({ type: "status" });
  if (!status.ok) return say(status.error.message, { error: true });
  input.value = status.gate;
  document.getElementById("gate-form").addEventListener("submit", async (event) => {
    event.preventDefault();
    const gate = normaliseGateUrl(input.value);
    if (gate === null) return say(t("gateInvalid"), { error: true });
    const current = await send({ type: "status" });
    if (current.ok && current.gate !== gate && (current.signedIn || current.sites.length > 0)) {
      if (!window.confirm(t("gateChangeConfirm"))) return undefined;
    }
    const answer = await send({ type: "set-gate", gate });
    if (!answer.ok) return say(answer.error.message, { error: true });
    input.value = answer.gate;
    return say(t("gateSaved", answer.gate));
  });
  document.body.dataset.ready = "true";
  return undefined;
}

start();
