/**
 * The service worker (Chromium) or event page (Firefox): the only part of the extension that
 * holds tokens and talks to the gate.
 *
 * The browser stops and restarts it at will, so every listener is registered here at top level,
 * synchronously, and each waits on `ready` before it does anything.
 */

import * as api from "../lib/api.js";
import { restrictSecretStorage } from "../lib/compat.js";
import { createDispatcher } from "../lib/dispatch.js";
import { sync } from "./delivery.js";
import { handlers } from "./handlers.js";
import { permissionsAdded, permissionsRemoved } from "./sites.js";
import * as state from "./state.js";
import { isUpkeepAlarm, queueUpkeep } from "./upkeep.js";

const ready = (async () => {
  await restrictSecretStorage();
  await state.exclusive(async () => {
    await state.migrate();
    await sync();
  });
})();

const dispatch = createDispatcher(handlers, {
  extensionId: api.runtime.id(),
  extensionUrl: api.runtime.getURL(""),
  onError: (error) => console.error("supportgate:", error),
});

const afterReady = (work) => async (...args) => {
  await ready;
  return work(...args);
};

const runUpkeep = afterReady(queueUpkeep);

api.runtime.onMessage(afterReady(dispatch));
api.alarms.onAlarm(afterReady((alarm) => (isUpkeepAlarm(alarm) ? queueUpkeep() : undefined)));
api.permissions.onAdded(afterReady(() => state.exclusive(() => permissionsAdded())));
api.permissions.onRemoved(
  afterReady((removed) => state.exclusive(() => permissionsRemoved(removed.origins ?? []))),
);
api.runtime.onStartup(runUpkeep);
api.runtime.onInstalled(runUpkeep);
