// Token buckets per (class, user or address), in memory: a limit protects this process; several
// processes each apply it, which errs on the side of letting people chat.
import type { PratConfig, RateLimitRule } from '../config/schema.js';
import { MatrixError } from './errors.js';

export type RateLimitClass = 'login' | 'registration' | 'message' | 'media_upload' | 'default';

interface Bucket {
  tokens: number;
  updated: number;
}

export class RateLimiter {
  private readonly buckets = new Map<string, Bucket>();
  private readonly sweeper: NodeJS.Timeout;

  constructor(private readonly config: PratConfig['rate_limits']) {
    // Full buckets carry no information; dropping them keeps memory bounded by active callers.
    this.sweeper = setInterval(() => this.sweep(), 60_000);
    this.sweeper.unref();
  }

  /** Takes one token or throws 429 M_LIMIT_EXCEEDED with the wait until the next token. */
  take(cls: RateLimitClass, key: string, now = Date.now()): void {
    if (!this.config.enabled) return;
    const rule: RateLimitRule = this.config[cls];
    const id = `${cls}\u0000${key}`;
    const bucket = this.buckets.get(id) ?? { tokens: rule.burst_count, updated: now };
    bucket.tokens = Math.min(rule.burst_count, bucket.tokens + ((now - bucket.updated) / 1000) * rule.per_second);
    bucket.updated = now;
    if (bucket.tokens < 1) {
      this.buckets.set(id, bucket);
      const retryAfterMs = Math.ceil(((1 - bucket.tokens) / rule.per_second) * 1000);
      throw new MatrixError('M_LIMIT_EXCEEDED', 'Too many requests', { extra: { retry_after_ms: retryAfterMs } });
    }
    bucket.tokens -= 1;
    this.buckets.set(id, bucket);
  }

  private sweep(now = Date.now()): void {
    for (const [id, b] of this.buckets) {
      const cls = id.slice(0, id.indexOf('\u0000')) as RateLimitClass;
      const rule = this.config[cls];
      if (b.tokens + ((now - b.updated) / 1000) * rule.per_second >= rule.burst_count) this.buckets.delete(id);
    }
  }

  close(): void {
    clearInterval(this.sweeper);
  }
}
