/**
 * A byte-rate limit shared by the sessions of one backup or load (token bucket, one
 * second of burst). `take` resolves when the bytes may go; with no limit it resolves at
 * once. Time comes from the caller's clock, so tests can drive it.
 */
export class RateLimit {
  private available: number;
  private last: number;

  constructor(
    private readonly bytesPerSecond: number | null,
    private readonly now: () => number = Date.now,
    private readonly sleep: (ms: number) => Promise<void> = (ms) => new Promise((r) => setTimeout(r, ms)),
  ) {
    this.available = bytesPerSecond ?? 0;
    this.last = now();
  }

  static mebibytes(miBPerSecond: number | null | undefined): RateLimit {
    return new RateLimit(miBPerSecond ? miBPerSecond * 1024 * 1024 : null);
  }

  async take(bytes: number): Promise<void> {
    const rate = this.bytesPerSecond;
    if (rate === null || bytes <= 0) return;
    for (;;) {
      const now = this.now();
      this.available = Math.min(rate, this.available + ((now - this.last) / 1000) * rate);
      this.last = now;
      // A request larger than the burst goes once the bucket is full, and leaves it in debt.
      if (this.available >= Math.min(bytes, rate)) {
        this.available -= bytes;
        return;
      }
      await this.sleep(Math.max(5, Math.ceil(((Math.min(bytes, rate) - this.available) / rate) * 1000)));
    }
  }
}
