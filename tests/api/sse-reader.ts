/**
 * Reads a Server-Sent Events body message by message, for the event stream
 * tests: each message with its event name, its parsed JSON data and when it
 * arrived; comment lines (heartbeats) are counted apart.
 *
 * @module
 */
import { waitFor } from "../helpers/wait.ts";

/** One message of the stream. */
export interface SseMessage {
  readonly event: string;
  readonly data: unknown;
  /** performance.now() when it was parsed. */
  readonly atMs: number;
}

/** Collects the messages of one stream as they arrive. */
export class SseReader {
  readonly messages: SseMessage[] = [];
  comments = 0;
  /** Set once the body ended (or failed). */
  ended = false;
  error: unknown = null;
  readonly done: Promise<void>;
  readonly #reader: ReadableStreamDefaultReader<Uint8Array>;

  constructor(body: ReadableStream<Uint8Array>) {
    this.#reader = body.getReader();
    this.done = this.#run();
  }

  async #run(): Promise<void> {
    const dec = new TextDecoder();
    let buf = "";
    try {
      for (;;) {
        const r = await this.#reader.read();
        if (r.done) break;
        buf += dec.decode(r.value, { stream: true });
        let i;
        while ((i = buf.indexOf("\n\n")) >= 0) {
          const block = buf.slice(0, i);
          buf = buf.slice(i + 2);
          let event = "message";
          const data: string[] = [];
          let comment = false;
          for (const line of block.split("\n")) {
            if (line.startsWith(":")) comment = true;
            else if (line.startsWith("event:")) event = line.slice(6).trim();
            else if (line.startsWith("data:")) data.push(line.slice(5).replace(/^ /, ""));
          }
          if (data.length > 0) this.messages.push({ event, data: JSON.parse(data.join("\n")), atMs: performance.now() });
          else if (comment) this.comments++;
        }
      }
    } catch (err) {
      this.error = err;
    } finally {
      this.ended = true;
    }
  }

  /** The messages named `event`. */
  of(event: string): SseMessage[] {
    return this.messages.filter((m) => m.event === event);
  }

  /** Waits until a message named `event` satisfies `check` (among those after index `from`). */
  waitFor(event: string, check: (data: never) => boolean, what: string, timeoutMs = 10_000, from = 0): Promise<SseMessage> {
    return waitFor(what, () => this.messages.slice(from).find((m) => m.event === event && check(m.data as never)) ?? (this.ended ? Promise.reject(new Error(`the stream ended (${String(this.error ?? "cleanly")}) before ${what}`)) : undefined), timeoutMs);
  }

  /** Stops reading (the client goes away). */
  async cancel(): Promise<void> {
    await this.#reader.cancel().catch(() => {});
    await this.done;
  }
}
