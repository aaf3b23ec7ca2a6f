/**
 * What a user of a real board should do about each BlueZ failure: the one
 * place where a D-Bus error from BlueZ gets its advice appended.
 *
 * @module
 */
import { type BusinessError, isBusinessError } from "../../core/errors.ts";
import { DBusError, DBusErrorName } from "./dbus/errors.ts";

/** Advice by D-Bus error name. */
const HINTS: ReadonlyMap<string, string> = new Map([
  [
    DBusErrorName.SERVICE_UNKNOWN,
    "bluetoothd is not running (nothing owns org.bluez on the system bus): start it with `sudo systemctl start bluetooth`",
  ],
  [
    DBusErrorName.NAME_HAS_NO_OWNER,
    "bluetoothd is not running: start it with `sudo systemctl start bluetooth`",
  ],
  [
    DBusErrorName.ACCESS_DENIED,
    "the system bus policy does not let this user talk to bluetoothd: install the policy file shown in docs/bluez.md, or run as a member of the `bluetooth` group",
  ],
  [
    "org.freedesktop.DBus.Error.NoServer",
    "there is no system bus here: is dbus running? (DBUS_SYSTEM_BUS_ADDRESS points elsewhere)",
  ],
  [
    "org.bluez.Error.NotReady",
    "the adapter is powered off or still starting: power it on with `bluetoothctl power on` (or Adapter.setPowered(true)), and check `rfkill list`",
  ],
  [
    "org.bluez.Error.NotPermitted",
    "BlueZ refused the operation: the characteristic does not allow it, too many advertisements are active, or the socket was already acquired",
  ],
  [
    "org.bluez.Error.NotAuthorized",
    "BlueZ refused to authorize the operation: check the user's rights on the adapter (docs/bluez.md)",
  ],
  [
    "org.bluez.Error.InProgress",
    "another operation on this device is in progress (another process connecting?)",
  ],
  [
    "org.bluez.Error.NotSupported",
    "this adapter or BlueZ version does not support it (BlueZ 5.50 or later is needed)",
  ],
  [DBusErrorName.NO_REPLY, "bluetoothd did not answer in time"],
  [
    DBusErrorName.DISCONNECTED,
    "the connection to the system bus closed (dbus-daemon restarted?)",
  ],
]);

/** Advice for BlueZ's `Failed` errors, by their text. */
const FAILED_HINTS: readonly [RegExp, string][] = [
  [
    /abort-by-local|connection-attempt|page-timeout|timed out|timeout/i,
    "the device did not answer: it is out of range, not advertising, or not connectable",
  ],
];

/**
 * An error with what to do about it, naming the action.
 *
 * @param e What failed.
 * @param action What was being done, e.g. `Cannot connect to "AA:BB:CC:DD:EE:FF"`.
 * @returns A {@linkcode DBusError} (code kept) whose text ends with advice
 *   when there is some; other linkweave errors are returned unchanged.
 */
export function bluezError(e: unknown, action: string): BusinessError<unknown> {
  if (e instanceof DBusError) {
    const hint = HINTS.get(e.dbusName) ??
      (e.dbusName === "org.bluez.Error.Failed"
        ? FAILED_HINTS.find(([re]) => re.test(e.text))?.[1]
        : undefined);
    const text = hint === undefined || e.text.includes(hint)
      ? e.text
      : `${e.text}${e.text === "" ? "" : "; "}${hint}`;
    return new DBusError(e.dbusName, action, { text, cause: e });
  }
  if (isBusinessError(e)) return e as BusinessError<unknown>;
  return new DBusError(DBusErrorName.FAILED, action, {
    text: e instanceof Error ? e.message : String(e),
    cause: e,
  });
}
