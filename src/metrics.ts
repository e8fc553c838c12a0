/**
 * Prometheus metrics (prom-client), served at GET /metrics. One registry per process; modules
 * increment these directly with a `stream_id` label. Removing a stream's series is the session's job
 * (`forgetStream`) so a long-lived server does not grow without bound.
 */
import client from 'prom-client';

export const registry = new client.Registry();
client.collectDefaultMetrics({ register: registry, prefix: 'gemma3n_trickle_' });

const L = ['stream_id'] as const;

export const metrics = {
  segmentsIn: new client.Counter({ name: 'gemma3n_trickle_segments_in_total', help: 'Input media segments received', labelNames: L, registers: [registry] }),
  segmentsOut: new client.Counter({ name: 'gemma3n_trickle_segments_out_total', help: 'Media segments passed through to publish_url', labelNames: L, registers: [registry] }),
  bytesIn: new client.Counter({ name: 'gemma3n_trickle_bytes_in_total', help: 'Input media bytes received', labelNames: L, registers: [registry] }),
  bytesOut: new client.Counter({ name: 'gemma3n_trickle_bytes_out_total', help: 'Media bytes passed through', labelNames: L, registers: [registry] }),
  segmentsDropped: new client.Counter({ name: 'gemma3n_trickle_segments_dropped_total', help: 'Segments dropped (slow output or sampler behind)', labelNames: ['stream_id', 'where'] as const, registers: [registry] }),
  framesSampled: new client.Counter({ name: 'gemma3n_trickle_frames_sampled_total', help: 'Video frames sampled', labelNames: L, registers: [registry] }),
  cycles: new client.Counter({ name: 'gemma3n_trickle_cycles_total', help: 'Generation cycles by outcome', labelNames: ['stream_id', 'outcome'] as const, registers: [registry] }),
  cycleLatency: new client.Histogram({
    name: 'gemma3n_trickle_cycle_latency_seconds',
    help: 'Wall time of a generation cycle, request build to record published',
    labelNames: L,
    buckets: [0.05, 0.1, 0.25, 0.5, 1, 2, 4, 8, 16, 32, 64],
    registers: [registry],
  }),
  queueDepth: new client.Gauge({ name: 'gemma3n_trickle_queue_depth', help: 'Items waiting in a bounded queue', labelNames: ['stream_id', 'queue'] as const, registers: [registry] }),
  recordsPublished: new client.Counter({ name: 'gemma3n_trickle_records_published_total', help: 'Data-channel records published', labelNames: L, registers: [registry] }),
  recordsDropped: new client.Counter({ name: 'gemma3n_trickle_records_dropped_total', help: 'Data-channel records dropped past the queue bound', labelNames: L, registers: [registry] }),
  activeStreams: new client.Gauge({ name: 'gemma3n_trickle_active_streams', help: 'Streams currently running', registers: [registry] }),
  // ---- the shared backend's scheduler (src/model/fair-scheduler.ts)
  queueWait: new client.Histogram({
    name: 'gemma3n_trickle_model_queue_wait_seconds',
    help: 'How long a model request waited for the shared backend',
    labelNames: L,
    buckets: [0.001, 0.01, 0.05, 0.1, 0.25, 0.5, 1, 2, 4, 8, 16],
    registers: [registry],
  }),
  engineInFlight: new client.Gauge({ name: 'gemma3n_trickle_model_requests_in_flight', help: 'Model requests in flight to the shared backend', registers: [registry] }),
  engineWaiting: new client.Gauge({ name: 'gemma3n_trickle_model_requests_waiting', help: 'Model requests waiting for the shared backend', registers: [registry] }),
  // ---- richer outputs (issue 15)
  partialsDropped: new client.Counter({ name: 'gemma3n_trickle_partials_dropped_total', help: 'Partial-text records dropped (superseded while waiting, or past the data queue bound)', labelNames: L, registers: [registry] }),
  alerts: new client.Counter({ name: 'gemma3n_trickle_alerts_total', help: 'Alert rules fired, by rule', labelNames: ['stream_id', 'rule'] as const, registers: [registry] }),
};

/** Drops every per-stream series of a finished stream (all label combinations carrying its stream_id). */
export async function forgetStream(streamId: string): Promise<void> {
  for (const m of Object.values(metrics)) {
    if (m === metrics.activeStreams) continue;
    const seen = new Set<string>();
    for (const v of (await m.get()).values) {
      if (v.labels.stream_id !== streamId) continue;
      // Histograms report per-bucket `le` labels that are not part of the series' own label set.
      const { le: _le, ...labels } = v.labels as Record<string, string | number>;
      const key = JSON.stringify(labels);
      if (seen.has(key)) continue;
      seen.add(key);
      (m as client.Counter<string>).remove(labels as Record<string, string>);
    }
  }
}
