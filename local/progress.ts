import type { Clock } from '../functions/shared/clock';

/**
 * A progress bar over virtual time for the sandbox. Stages run on their own virtual clocks; the
 * bar samples the current stage's clock on a real-time interval (which never touches virtual
 * time) and redraws one line on a terminal, or prints one line per stage when not on a TTY.
 */
export class VirtualProgress {
  readonly #out: NodeJS.WriteStream;
  readonly #interactive: boolean;
  #timer: NodeJS.Timeout | undefined;

  constructor(out: NodeJS.WriteStream = process.stderr) {
    this.#out = out;
    this.#interactive = Boolean(out.isTTY) && process.env.CI !== 'true';
  }

  /** Tracks a stage expected to cover `expectedMs` of virtual time from now. */
  stage(label: string, clock: Clock, expectedMs: number): { done(note: string): void } {
    this.#stop();
    const startedAt = clock.now();
    const realStart = Date.now();
    const draw = (): void => {
      const share = Math.min(1, (clock.now() - startedAt) / expectedMs);
      const width = 30;
      const filled = Math.round(share * width);
      const virtualHours = ((clock.now() - startedAt) / 3_600_000).toFixed(2);
      this.#out.write(
        `\r${label.padEnd(34)} [${'#'.repeat(filled)}${'-'.repeat(width - filled)}] ${String(Math.round(share * 100)).padStart(3)}%  ${virtualHours} virtual h`,
      );
    };
    if (this.#interactive) {
      draw();
      this.#timer = setInterval(draw, 200);
    } else {
      this.#out.write(`${label} ...\n`);
    }
    return {
      done: (note) => {
        this.#stop();
        if (this.#interactive) draw();
        const realSeconds = ((Date.now() - realStart) / 1000).toFixed(1);
        this.#out.write(`${this.#interactive ? '\n' : ''}  ${note} (${realSeconds} s real)\n`);
      },
    };
  }

  #stop(): void {
    if (this.#timer) clearInterval(this.#timer);
    this.#timer = undefined;
  }
}
