// The few autocannon 9 types the benchmark uses (the package ships none).
declare module 'autocannon' {
  namespace autocannon {
    interface Options {
      url: string;
      method?: string;
      connections?: number;
      duration?: number;
      timeout?: number;
      body?: string;
      idReplacement?: boolean;
      setupClient?: (client: { setHeaders(h: Record<string, string>): void }) => void;
    }
    interface Histogram { p50: number; p99: number; average: number; max: number }
    interface Result {
      duration: number;
      latency: Histogram;
      requests: Histogram & { total: number };
      '2xx': number;
      non2xx: number;
      errors: number;
      timeouts: number;
    }
  }
  function autocannon(opts: autocannon.Options): Promise<autocannon.Result>;
  export = autocannon;
}
