/**
 * The media streams of a device's sessions (system API): their ids and the
 * rules of the manager's stream calls (`createStream`, `getSurfaceId`,
 * `setSurfaceId`, `updateSurfaceParam`, `startStream`, `stopStream`,
 * `destroyStream`, `streamStats`), which delegate here with the same
 * arguments. A stream itself is a `MediaStream` (`_media_stream.ts`).
 *
 * @module
 */
import { ErrorCode } from "../error_codes.ts";
import { BusinessError } from "../errors.ts";
import { trace } from "../trace.ts";
import { findConsumer } from "./surface.ts";
import { MediaStream } from "./_media_stream.ts";
import type { Session } from "./_session.ts";
import { failure } from "./_session_port.ts";
import { checkInt, checkString, checkSurfaceParam, describe, invalid } from "./_check.ts";
import {
  DEFAULT_BITRATE,
  FIRST_STREAM_ID,
  MAX_BITRATE,
  MIN_BITRATE,
  type StreamParam,
  StreamRole,
  type SurfaceParam,
} from "./types.ts";

/** The streams of a device's sessions, by id. */
export class MediaStreams {
  #sessions: Map<number, Session>;
  #streams = new Map<number, MediaStream>();
  #nextStream = FIRST_STREAM_ID;

  /** @param sessions The device's sessions, by id. */
  constructor(sessions: Map<number, Session>) {
    this.#sessions = sessions;
  }

  /**
   * A stream is gone.
   *
   * @param id The stream id.
   */
  forget(id: number): void {
    this.#streams.delete(id);
  }

  #stream(id: unknown, action: string): MediaStream {
    const n = checkInt(id, "streamId");
    const st = this.#streams.get(n);
    if (st === undefined) throw invalid(`Cannot ${action}: no stream ${n}`);
    return st;
  }

  /**
   * Create the session's stream (one per session).
   *
   * @param sessionId The session (`needSendStream` for a source, `needReceiveStream` for a sink).
   * @param param Name, role, bitrate.
   * @returns The stream id (1000, 1001, ...).
   * @throws {ParameterError} 401 for a bad argument.
   * @throws {BusinessError} 32300003 for a bitrate out of range; 32300004 for a color space conversion.
   */
  createStream(sessionId: number, param: StreamParam): Promise<number> {
    const n = checkInt(sessionId, "sessionId");
    if (typeof param !== "object" || param === null) {
      throw invalid(`Invalid param: expected a StreamParam, got ${describe(param)}`);
    }
    const name = checkString(param.name, "param.name");
    const role = checkInt(param.role, "param.role");
    if (role !== StreamRole.SOURCE && role !== StreamRole.SINK) {
      throw invalid(`Invalid role ${role}: expected StreamRole.SOURCE (0) or SINK (1)`);
    }
    let bitrate: number = DEFAULT_BITRATE;
    if (param.bitrate !== undefined) {
      bitrate = checkInt(param.bitrate, "param.bitrate");
      if (bitrate < MIN_BITRATE || bitrate > MAX_BITRATE) {
        throw new BusinessError(
          ErrorCode.BITRATE_NOT_SUPPORTED,
          `Cannot create the stream: bitrate ${bitrate} is outside ${MIN_BITRATE}..${MAX_BITRATE}`,
        );
      }
    }
    if (param.colorSpaceConversionTarget !== undefined) {
      checkInt(param.colorSpaceConversionTarget, "param.colorSpaceConversionTarget");
      throw new BusinessError(
        ErrorCode.COLOR_SPACE_NOT_SUPPORTED,
        `Cannot create the stream: color space conversion to ${param.colorSpaceConversionTarget} is not supported`,
      );
    }
    const s = this.#sessions.get(n);
    if (s === undefined) return Promise.reject(failure(`Cannot create a stream: no session ${n}`));
    if (s.stream !== undefined) {
      return Promise.reject(
        new BusinessError(
          ErrorCode.STREAM_EXISTS,
          `Cannot create a stream: session ${n} has stream ${s.stream.id} already`,
        ),
      );
    }
    const need = role === StreamRole.SOURCE ? "needSendStream" : "needReceiveStream";
    if (!s.options[need]) {
      return Promise.reject(
        failure(`Cannot create a stream: session ${n} was created without ${need}`),
      );
    }
    const id = this.#nextStream++;
    const st = new MediaStream(id, { name, role, bitrate, session: s });
    s.stream = st;
    this.#streams.set(id, st);
    trace("ability.streamCreated", { sessionId: n, streamId: id, name, role, bitrate });
    return Promise.resolve(id);
  }

  /**
   * The surface a source stream reads frames from.
   *
   * @param streamId A source stream.
   * @param param The frames' geometry.
   * @returns The surface id (for `surface.getProducer`).
   * @throws {ParameterError} 401 for a bad argument or a sink stream.
   */
  getSurfaceId(streamId: number, param: SurfaceParam): string {
    const st = this.#stream(streamId, "get a surface id");
    const p = checkSurfaceParam(param);
    if (st.role !== StreamRole.SOURCE) {
      throw invalid(`Cannot get a surface id: stream ${st.id} is a sink (use setSurfaceId)`);
    }
    return st.surfaceFor(p);
  }

  /**
   * The surface a sink stream shows frames on.
   *
   * @param streamId A sink stream.
   * @param surfaceId A surface from `surface.createSurface()`.
   * @param param The frames' geometry.
   * @throws {ParameterError} 401 for a bad argument, a source stream or an unknown surface.
   */
  setSurfaceId(streamId: number, surfaceId: string, param: SurfaceParam): void {
    const st = this.#stream(streamId, "set the surface id");
    checkString(surfaceId, "surfaceId");
    const p = checkSurfaceParam(param);
    if (st.role !== StreamRole.SINK) {
      throw invalid(`Cannot set the surface id: stream ${st.id} is a source (use getSurfaceId)`);
    }
    const consumer = findConsumer(surfaceId);
    if (consumer === undefined) {
      throw invalid(`Cannot set the surface id: no surface ${JSON.stringify(surfaceId)}`);
    }
    st.param = p;
    st.consumer = consumer;
  }

  /**
   * Change rotation and flip: a source tells its sink, a sink applies them.
   *
   * @param streamId The stream.
   * @param param The parameters.
   * @throws {ParameterError} 401 for a bad argument.
   */
  updateSurfaceParam(streamId: number, param: SurfaceParam): void {
    const st = this.#stream(streamId, "update the surface parameters");
    st.update(checkSurfaceParam(param));
  }

  /**
   * Start a stream. A sink starts showing frames and tells its source; a
   * source starts sending once its sink started.
   *
   * @param streamId The stream.
   * @throws {ParameterError} 401 for a bad argument, no surface, or a disconnected session.
   * @throws {BusinessError} 32300002 for a source whose sink has not started.
   */
  startStream(streamId: number): void {
    const st = this.#stream(streamId, "start the stream");
    if (st.session.state !== "connected") {
      throw invalid(`Cannot start stream ${st.id}: its session is not connected`);
    }
    if (st.role === StreamRole.SOURCE) {
      if (st.producer === undefined) {
        throw invalid(`Cannot start stream ${st.id}: get its surface id first`);
      }
      if (st.session.peerSinkStarted !== st.name) {
        throw new BusinessError(
          ErrorCode.RECEIVE_STREAM_NOT_STARTED,
          `Cannot start stream ${st.id}: the peer's sink "${st.name}" has not started`,
        );
      }
    } else if (st.consumer === undefined) {
      throw invalid(`Cannot start stream ${st.id}: set its surface id first`);
    }
    st.start();
  }

  /**
   * Stop a stream.
   *
   * @param streamId The stream.
   * @throws {ParameterError} 401 for a bad or unknown id.
   */
  stopStream(streamId: number): void {
    this.#stream(streamId, "stop the stream").stop();
  }

  /**
   * Destroy a stream.
   *
   * @param streamId The stream.
   * @throws {ParameterError} 401 for a bad or unknown id.
   */
  destroyStream(streamId: number): void {
    this.#stream(streamId, "destroy the stream").destroy();
  }

  /**
   * linkweave extension: what a stream did (frames sent and dropped by a source).
   *
   * @param streamId The stream.
   * @returns Its counters.
   */
  streamStats(streamId: number): { sent: number; dropped: number; received: number } {
    const st = this.#stream(streamId, "read the stream's counters");
    return { sent: st.sent, dropped: st.dropped, received: st.consumer?.framesReceived ?? 0 };
  }
}
