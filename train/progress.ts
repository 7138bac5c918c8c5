// A one-line progress bar on stderr with the rate in items per second (redrawn in place on a
// terminal, one line per ~10% otherwise).
export class Progress {
  private readonly start = performance.now();
  private done = 0;
  private lastLogged = -1;

  constructor(private readonly total: number, private readonly label = 'images', private readonly stream: NodeJS.WriteStream = process.stderr) {}

  /** Records `n` more finished items and redraws. */
  tick(n = 1): void {
    this.done += n;
    const seconds = (performance.now() - this.start) / 1000;
    const rate = seconds > 0 ? this.done / seconds : 0;
    const fraction = this.total > 0 ? this.done / this.total : 1;
    const width = 30;
    const filled = Math.round(fraction * width);
    const bar = `[${'#'.repeat(filled)}${'.'.repeat(width - filled)}]`;
    const eta = rate > 0 ? (this.total - this.done) / rate : 0;
    const line = `${bar} ${this.done}/${this.total} ${this.label}, ${rate.toFixed(2)} ${this.label}/s, ${seconds.toFixed(1)} s elapsed, eta ${eta.toFixed(0)} s`;
    if (this.stream.isTTY) {
      this.stream.write(`\r${line}\x1b[K${this.done >= this.total ? '\n' : ''}`);
    } else {
      const decile = Math.floor(fraction * 10);
      if (decile !== this.lastLogged || this.done >= this.total) {
        this.lastLogged = decile;
        this.stream.write(`${line}\n`);
      }
    }
  }
}
