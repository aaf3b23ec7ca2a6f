/**
 * Stand-ins for the OpenHarmony kits the abilityConnectionManager documentation
 * examples use besides linkweave's own APIs, so those examples run with
 * only their imports, hilog, AppStorage and UI lines changed:
 *
 * - `hilog`: prints `I 0000/tag: text args...` on stdout (errors on stderr);
 * - `AppStorage`: a process-wide key-value store;
 * - `util.TextEncoder`: UTF-8 `encodeInto(text)`;
 * - `fs` and `photoAccessHelper`: the photo picker "picks" the file named
 *   by `LW_PHOTO`, and `fs.openSync` opens it;
 * - `CameraService.initCamera(surfaceId)`: a synthetic camera writing
 *   300-byte frames (the size of a small encoded video frame, which the
 *   default 80 kbit/s lets through at 30 fps) into the surface, 30 per
 *   second, `LW_CAMERA_FRAMES` of them.
 *
 * @module
 */
import { openSync } from "node:fs";
import process from "node:process";
import { surface } from "../ability_connection_manager.ts";

function format(fmt: unknown, args: unknown[]): string {
  let i = 0;
  const text = String(fmt).replace(
    /%\{(?:public|private)\}[sd]|%[sd]/g,
    () => String(args[i++] ?? ""),
  );
  const rest = args.slice(i).map((a) => typeof a === "string" ? a : JSON.stringify(a));
  return [text, ...rest].join(" ");
}

function line(level: string, args: unknown[]): string {
  if (typeof args[0] !== "number") return `${level} ${format(args[0], args.slice(1))}`;
  const [domain, tag, fmt, ...rest] = args as [number, string, unknown, ...unknown[]];
  return `${level} ${domain.toString(16).padStart(4, "0")}/${tag}: ${format(fmt, rest)}`;
}

const lines: string[] = [];
const waiters: { re: RegExp; times: number; resolve: () => void }[] = [];

function count(re: RegExp): number {
  return lines.filter((l) => re.test(l)).length;
}

function emit(text: string, out: (s: string) => void): void {
  out(text);
  lines.push(text);
  for (const w of [...waiters]) {
    if (count(w.re) >= w.times) {
      waiters.splice(waiters.indexOf(w), 1);
      w.resolve();
    }
  }
}

/** `hilog` (`@kit.PerformanceAnalysisKit`), lenient about its arguments as the examples are. */
export const hilog: {
  info(...args: unknown[]): void;
  error(...args: unknown[]): void;
} = {
  info: (...args) => emit(line("I", args), console.log),
  error: (...args) => emit(line("E", args), console.error),
};

/**
 * Resolve once hilog printed `times` lines matching `re` (now or later): how
 * the examples' glue waits for what a documentation snippet reports.
 *
 * @param re The pattern.
 * @param times How many lines. @default {1}
 * @returns When they were printed.
 */
export function logged(re: RegExp, times = 1): Promise<void> {
  if (count(re) >= times) return Promise.resolve();
  return new Promise((resolve) => waiters.push({ re, times, resolve }));
}

const store = new Map<string, unknown>();
const watchers = new Map<string, (value: unknown) => void>();

/** `AppStorage`: a process-wide store (plus `watch`, for the examples' glue). */
export const AppStorage: {
  setOrCreate<T>(key: string, value: T): void;
  get<T>(key: string): T | undefined;
  watch<T>(key: string, fn: (value: T) => void): void;
} = {
  setOrCreate: (key, value) => {
    store.set(key, value);
    watchers.get(key)?.(value);
  },
  get: <T>(key: string) => store.get(key) as T | undefined,
  watch: (key, fn) => void watchers.set(key, fn as (value: unknown) => void),
};

/** `util` (`@kit.ArkTS`): the UTF-8 text encoder. */
export const util: {
  TextEncoder: { create(encoding?: string): { encodeInto(text: string): Uint8Array<ArrayBuffer> } };
} = {
  TextEncoder: {
    create: () => ({ encodeInto: (text: string) => new TextEncoder().encode(text) }),
  },
};

/** `fileIo` (`@kit.CoreFileKit`): open a file. */
export const fs: {
  OpenMode: { READ_ONLY: number };
  openSync(path: string, mode?: number): { fd: number };
} = {
  OpenMode: { READ_ONLY: 0 },
  openSync: (path) => ({ fd: openSync(path, "r") }),
};

/** `photoAccessHelper` (`@kit.MediaLibraryKit`): a picker that picks `LW_PHOTO`. */
export const photoAccessHelper: {
  PhotoViewMIMETypes: { IMAGE_TYPE: string };
  PhotoSelectOptions: new () => { MIMEType: string; maxSelectNumber: number };
  PhotoViewPicker: new () => { select(options: unknown): Promise<{ photoUris: string[] }> };
} = {
  PhotoViewMIMETypes: { IMAGE_TYPE: "image/*" },
  PhotoSelectOptions: class {
    MIMEType = "";
    maxSelectNumber = 1;
  },
  PhotoViewPicker: class {
    select() {
      return Promise.resolve({ photoUris: [process.env.LW_PHOTO ?? ""] });
    }
  },
};

/** The camera of the stream example: frames into a surface, 30 per second. */
export const CameraService: { initCamera(surfaceId: string, index: number): Promise<void> } = {
  initCamera(surfaceId) {
    const producer = surface.getProducer(surfaceId);
    const total = Number(process.env.LW_CAMERA_FRAMES ?? "60");
    const frame = new Uint8Array(300);
    let n = 0;
    const timer = setInterval(() => {
      frame.fill(n & 255);
      try {
        producer.writeFrame(frame);
      } catch {
        clearInterval(timer); // the stream was destroyed
        return;
      }
      if (++n >= total) clearInterval(timer);
    }, 1000 / 30);
    return Promise.resolve();
  },
};
