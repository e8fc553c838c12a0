/**
 * The per-stream control routes, beside PyTrickle's (which act on the stream X-Stream-Id names, or on
 * the only one): a list of every running stream, and status / params / stop of one stream by id.
 *
 *   GET  /streams                   {capacity, active_streams, streams: [<stream>…]}
 *   GET  /streams/{id}/status       <stream>, or 404
 *   POST /streams/{id}/params       as /stream/params, for that stream only (404 when it does not run)
 *   POST /streams/{id}/stop         as /stream/stop, for that stream only (404 when it does not run)
 *
 * `<stream>` carries the fields /stream/status shows for its one stream (`client_running`, `fps`,
 * `current_params`, `params`, `stream`), plus `stream_id`, so both views read the same. The id in the
 * path follows the X-Stream-Id rule (1–128 printable characters); the route's id wins over a header.
 */
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { errorMessage } from '../errors.js';
import { streamIdHeader } from './requests.js';
import type { Runner, StreamEntry } from './runner.js';

/** One stream's status fields (`withId`: prefixed by `stream_id`, for lists and the per-stream route). */
export function streamFields(e: StreamEntry, withId: boolean): Record<string, unknown> {
  const snap = e.session.status();
  return {
    ...(withId ? { stream_id: e.config.streamId } : {}),
    client_running: snap.running,
    fps: snap.fps,
    current_params: {
      subscribe_url: e.config.subscribeUrl ?? '',
      publish_url: e.config.publishUrl ?? '',
      gateway_request_id: e.config.streamId,
    },
    params: snap.params,
    stream: { started_at_ms: snap.started_at_ms, counters: snap.counters, data_channel: snap.data_channel },
  };
}

export interface StreamRouteHandlers {
  params(streamId: string, req: FastifyRequest, reply: FastifyReply): Promise<unknown>;
  stop(streamId: string, reply: FastifyReply): Promise<unknown>;
  describeScheduler?: () => Record<string, unknown>;
}

type IdRequest = FastifyRequest<{ Params: { id: string } }>;

export function registerStreamRoutes(app: FastifyInstance, runner: Runner, h: StreamRouteHandlers): void {
  /** The route's id, checked like X-Stream-Id; answers 400 itself when it is malformed. */
  const idOf = (req: IdRequest, reply: FastifyReply): string | undefined => {
    try {
      const id = streamIdHeader(req.params.id);
      if (id !== undefined) return id;
    } catch (err) {
      void reply.code(400).send({ status: 'error', message: errorMessage(err), code: 'invalid_stream_id' });
      return undefined;
    }
    void reply.code(400).send({ status: 'error', message: 'stream id must not be empty', code: 'invalid_stream_id' });
    return undefined;
  };

  app.get('/streams', async () => {
    const streams = runner.streams();
    const sched = h.describeScheduler?.();
    return {
      capacity: runner.capacity,
      active_streams: streams.length,
      streams: streams.map((e) => streamFields(e, true)),
      ...(sched ? { model_scheduler: sched } : {}),
    };
  });

  app.get('/streams/:id/status', async (req: IdRequest, reply) => {
    const id = idOf(req, reply);
    if (id === undefined) return reply;
    const e = runner.get(id);
    if (!e) return reply.code(404).send({ status: 'error', message: `No stream with id "${id}" is running`, code: 'stream_not_found' });
    return streamFields(e, true);
  });

  app.post('/streams/:id/params', async (req: IdRequest, reply) => {
    const id = idOf(req, reply);
    if (id === undefined) return reply;
    return h.params(id, req, reply);
  });

  app.post('/streams/:id/stop', async (req: IdRequest, reply) => {
    const id = idOf(req, reply);
    if (id === undefined) return reply;
    return h.stop(id, reply);
  });
}
