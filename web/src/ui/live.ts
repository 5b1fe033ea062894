// Live updates: CometBFT's own event subscription over its WebSocket. Events only say "look
// again": every value shown is re-read with proofs at a certified height ≥ the event's height.

export interface LiveOptions {
  url: string;
  queries: string[];
  /** A tx event at block `height` arrived. */
  onEvent: (height: bigint) => void;
  /** Subscribed (true) or disconnected (false). */
  onState: (live: boolean) => void;
}

export function subscribe(o: LiveOptions): () => void {
  let ws: WebSocket | undefined;
  let stopped = false;
  let retry = 1000;
  let confirmed = new Set<number>();
  const connect = () => {
    if (stopped) return;
    confirmed = new Set();
    try {
      ws = new WebSocket(o.url);
    } catch {
      setTimeout(connect, retry);
      return;
    }
    ws.onopen = () => {
      o.queries.forEach((query, i) => ws!.send(JSON.stringify({ jsonrpc: '2.0', method: 'subscribe', id: i + 1, params: { query } })));
    };
    ws.onmessage = (m) => {
      let j: any;
      try {
        j = JSON.parse(String(m.data));
      } catch {
        return;
      }
      if (j.error) return;
      const data = j.result?.data;
      if (!data) {
        // The answer to a subscribe request.
        if (typeof j.id === 'number' && j.result && !confirmed.has(j.id)) {
          confirmed.add(j.id);
          if (confirmed.size === o.queries.length) {
            retry = 1000;
            o.onState(true);
          }
        }
        return;
      }
      const h = data.value?.TxResult?.height ?? j.result?.events?.['tx.height']?.[0];
      if (h !== undefined && /^\d+$/.test(String(h))) o.onEvent(BigInt(h));
    };
    ws.onclose = () => {
      o.onState(false);
      if (!stopped) setTimeout(connect, retry);
      retry = Math.min(retry * 2, 30_000);
    };
  };
  connect();
  return () => {
    stopped = true;
    ws?.close();
  };
}

/** The event queries of one patient (event types: crates/state/src/domain/). */
export function patientQueries(patient: string): string[] {
  const q = (ev: string) => `tm.event='Tx' AND ${ev}.patient_id='${patient}'`;
  return [q('medledger.access.logged'), q('medledger.consent.granted'), q('medledger.consent.revoked'), q('medledger.access.reviewed')];
}
