/**
 * `Refusal`: the one kind of error a handler means the sender to see. The dispatcher turns it
 * into the answer's `error`; any other error stays inside the worker.
 */

/** An expected failure a handler reports to the sender: a code, a message and details. */
export class Refusal extends Error {
  constructor(code, message, details = {}) {
    super(message);
    this.code = code;
    this.details = details;
  }
}
