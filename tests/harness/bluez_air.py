'''linkweave's BlueZ mock with an air link (a python-dbusmock template).

One mock process plays bluetoothd for several LE adapters that share one
"air": an adapter that advertises (LEAdvertisingManager1) is seen by the
others when they scan (Adapter1 discovery, with UUID and pattern filters);
Device1.Connect links two adapters, creates the central's Device1 on the
peripheral, and mirrors the peripheral's registered GATT application
(GattManager1) under the central's device, like bluetoothd's GATT client:
service0010/char0011 paths, ServicesResolved. Reads and writes on a mirror go
to the application with the server options ({device, mtu, link, type,
offset}); the application's notifications come back as PropertiesChanged on
the mirror. AcquireWrite/AcquireNotify work on both sides: a client gets one
end of a SOCK_SEQPACKET socket pair and the ATT MTU, as bluetoothd gives it;
an application characteristic with WriteAcquired/NotifyAcquired is asked for
its own socket, and the mock moves packets between the two.

Faults on demand (org.bluez.Mock on /): SimulateLinkLoss, FailNext (the next
N calls of a method on an adapter's objects fail with a given error),
Configure (mtu, delays), SetAdvertising (an adapter out of range). Every call
on a BlueZ interface is logged: GetCallLog returns (ms, path, method, args).

Parameters (JSON): {"adapters": [["hci0", "00:00:00:11:11:11", "alias"], ...],
"mtu": 517}.

Written for linkweave's tests; BlueZ's D-Bus API as documented in BlueZ's
doc/*-api.txt (5.66).
'''

import json
import os
import socket
import time

import dbus
import dbus.service
from gi.repository import GLib

from dbusmock import OBJECT_MANAGER_IFACE, mockobject

BUS_NAME = 'org.bluez'
MAIN_OBJ = '/'
SYSTEM_BUS = True
IS_OBJECT_MANAGER = True

MOCK_IFACE = 'org.bluez.Mock'
ADAPTER = 'org.bluez.Adapter1'
DEVICE = 'org.bluez.Device1'
GATT_MANAGER = 'org.bluez.GattManager1'
ADV_MANAGER = 'org.bluez.LEAdvertisingManager1'
AGENT_MANAGER = 'org.bluez.AgentManager1'
SERVICE = 'org.bluez.GattService1'
CHAR = 'org.bluez.GattCharacteristic1'
DESC = 'org.bluez.GattDescriptor1'
ADV = 'org.bluez.LEAdvertisement1'
PROPS = 'org.freedesktop.DBus.Properties'

ERR = 'org.bluez.Error.'

STATE = {
    'conn': None,
    'bus_name': None,
    'mtu': 517,
    'resolve_delay_ms': 20,
    'connect_delay_ms': 5,
    'connect_fail_delay_ms': 200,
    'adapters': {},   # name -> AirAdapter
    'links': [],      # Link
    'faults': {},     # (adapter, method) -> [name, message, count]
    'log': [],        # (ms, path, method, args)
}


def bluez_error(name, message=''):
    return dbus.exceptions.DBusException(message or name, name=ERR + name)


def record(path, method, args=()):
    text = ', '.join(_short(a) for a in args)
    STATE['log'].append((int(time.time() * 1000), str(path), method, text))
    if len(STATE['log']) > 20000:
        del STATE['log'][:10000]


def _short(value):
    if isinstance(value, (bytes, bytearray, dbus.ByteArray)):
        return 'bytes(%d)' % len(value)
    if isinstance(value, dbus.Array) and value.signature == 'y':
        return 'bytes(%d)' % len(value)
    if isinstance(value, dict):
        return '{' + ', '.join('%s: %s' % (k, _short(v)) for k, v in value.items()) + '}'
    if isinstance(value, (list, tuple)):
        return '[' + ', '.join(_short(v) for v in value) + ']'
    return str(value)


def check_fault(adapter_name, method):
    key = (adapter_name, method)
    fault = STATE['faults'].get(key)
    if fault is None:
        return
    fault[2] -= 1
    if fault[2] <= 0:
        del STATE['faults'][key]
    raise dbus.exceptions.DBusException(fault[1] or fault[0], name=fault[0])


def dev_path(adapter_name, address):
    return '/org/bluez/%s/dev_%s' % (adapter_name, address.upper().replace(':', '_'))


def add_object(obj):
    mockobject.objects[obj.path] = obj
    STATE['root'].EmitSignal(OBJECT_MANAGER_IFACE, 'InterfacesAdded', 'oa{sa{sv}}', [
        dbus.ObjectPath(obj.path), obj.props])


def remove_object(obj):
    if mockobject.objects.get(obj.path) is not obj:
        return
    ifaces = list(obj.props.keys())
    obj.remove_from_connection()
    del mockobject.objects[obj.path]
    STATE['root'].EmitSignal(OBJECT_MANAGER_IFACE, 'InterfacesRemoved', 'oas', [
        dbus.ObjectPath(obj.path), dbus.Array(ifaces, signature='s')])


def changed(obj, iface, values):
    for k, v in values.items():
        obj.props[iface][k] = v
    obj.EmitSignal(PROPS, 'PropertiesChanged', 'sa{sv}as', [
        iface, dbus.Dictionary(values, signature='sv'), dbus.Array([], signature='s')])


def call_app(owner, path, iface, method, sig, args, ok, err, timeout=25):
    STATE['conn'].call_async(owner, path, iface, method, sig, args, ok, err,
                             timeout=timeout, byte_arrays=True)


def seqpacket_pair():
    a, b = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    a.setblocking(False)
    b.setblocking(False)
    return a, b


def watch(sock, on_packet, on_hup):
    '''Call on_packet for each packet read from sock, on_hup once when it closes.'''
    def cb(_fd, cond):
        if cond & GLib.IO_IN:
            while True:
                try:
                    data = sock.recv(65536)
                except BlockingIOError:
                    break
                except OSError:
                    data = b''
                if not data:
                    on_hup()
                    return False
                on_packet(bytes(data))
        if cond & (GLib.IO_HUP | GLib.IO_ERR):
            on_hup()
            return False
        return True
    return GLib.io_add_watch(sock.fileno(), GLib.PRIORITY_DEFAULT,
                             GLib.IO_IN | GLib.IO_HUP | GLib.IO_ERR, cb)


def unwatch(source):
    if source is not None and GLib.MainContext.default().find_source_by_id(source) is not None:
        GLib.source_remove(source)


OUTBOX = {}  # socket -> [packets waiting for room, GLib watch]


def forget_outbox(sock):
    '''Before a socket closes: drop what waits for it.'''
    box = OUTBOX.pop(sock, None)
    if box is not None:
        unwatch(box[1])


def send_packet(sock, data):
    '''Send one packet; when the socket is full, keep it (in order) until there is room,
    as the controller's flow control holds what the air cannot take yet.'''
    box = OUTBOX.get(sock)
    if box is not None:
        box[0].append(data)
        return True
    try:
        sock.send(data)
        return True
    except BlockingIOError:
        pass
    except OSError:
        return False
    box = [[data], None]
    OUTBOX[sock] = box

    def flush(_fd, cond):
        while box[0]:
            try:
                sock.send(box[0][0])
            except BlockingIOError:
                return True
            except OSError:
                break
            box[0].pop(0)
        OUTBOX.pop(sock, None)
        return False

    box[1] = GLib.io_add_watch(sock.fileno(), GLib.PRIORITY_DEFAULT,
                               GLib.IO_OUT | GLib.IO_HUP | GLib.IO_ERR, flush)
    return True


class AirAdapter(mockobject.DBusMockObject):
    '''An LE adapter: Adapter1, GattManager1 and LEAdvertisingManager1.'''

    def __init__(self, name, address, alias):
        path = '/org/bluez/' + name
        super().__init__(STATE['bus_name'], path, ADAPTER, {
            'Address': dbus.String(address, variant_level=1),
            'AddressType': dbus.String('public', variant_level=1),
            'Name': dbus.String(alias, variant_level=1),
            'Alias': dbus.String(alias, variant_level=1),
            'Class': dbus.UInt32(0, variant_level=1),
            'Powered': dbus.Boolean(True, variant_level=1),
            'Discoverable': dbus.Boolean(False, variant_level=1),
            'DiscoverableTimeout': dbus.UInt32(180, variant_level=1),
            'Pairable': dbus.Boolean(True, variant_level=1),
            'PairableTimeout': dbus.UInt32(0, variant_level=1),
            'Discovering': dbus.Boolean(False, variant_level=1),
            'UUIDs': dbus.Array(['00001801-0000-1000-8000-00805f9b34fb'], signature='s', variant_level=1),
            'Modalias': dbus.String('usb:v1D6Bp0246d0542', variant_level=1),
            'Roles': dbus.Array(['central', 'peripheral'], signature='s', variant_level=1),
        })
        self.props[GATT_MANAGER] = {}
        self.props[ADV_MANAGER] = {
            'ActiveInstances': dbus.Byte(0, variant_level=1),
            'SupportedInstances': dbus.Byte(4, variant_level=1),
            'SupportedIncludes': dbus.Array(['tx-power', 'appearance', 'local-name'], signature='s', variant_level=1),
        }
        self.name = name
        self.address = address
        self.filter = {}
        self.discovering_owner = None
        self.apps = []         # [{'owner', 'path', 'tree', 'chars': {path: AppChar}, 'watch', 'signal'}]
        self.advs = []         # [{'owner', 'path', 'props', 'watch'}], at most 4
        self.in_range = True

    # -- properties ---------------------------------------------------------

    @property
    def powered(self):
        return bool(self.props[ADAPTER]['Powered'])

    @dbus.service.method(PROPS, in_signature='ssv', out_signature='')
    def Set(self, interface_name, property_name, value, *_, **__):
        record(self.path, 'Set', (interface_name, property_name, value))
        if interface_name == ADAPTER and property_name == 'Powered':
            check_fault(self.name, 'SetPowered')
            on = bool(value)
            changed(self, ADAPTER, {'Powered': dbus.Boolean(on, variant_level=1)})
            if not on:
                for link in list(STATE['links']):
                    if self in (link.central, link.peripheral):
                        link.drop()
                if self.props[ADAPTER]['Discovering']:
                    changed(self, ADAPTER, {'Discovering': dbus.Boolean(False, variant_level=1)})
            else:
                air_tick()
            return
        if interface_name == ADAPTER and property_name in ('Alias', 'Discoverable', 'Pairable'):
            changed(self, ADAPTER, {property_name: value})
            return
        raise dbus.exceptions.DBusException('Property %s is read-only' % property_name,
                                            name='org.freedesktop.DBus.Error.PropertyReadOnly')

    # -- discovery ----------------------------------------------------------

    @dbus.service.method(ADAPTER, in_signature='a{sv}', out_signature='')
    def SetDiscoveryFilter(self, properties):
        record(self.path, 'SetDiscoveryFilter', (properties,))
        check_fault(self.name, 'SetDiscoveryFilter')
        known = {'UUIDs', 'RSSI', 'Pathloss', 'Transport', 'DuplicateData', 'Discoverable', 'Pattern'}
        for k in properties:
            if k not in known:
                raise bluez_error('InvalidArguments', 'Unknown filter %s' % k)
        self.filter = dict(properties)

    @dbus.service.method(ADAPTER, in_signature='', out_signature='as')
    def GetDiscoveryFilters(self):
        return ['UUIDs', 'RSSI', 'Pathloss', 'Transport', 'DuplicateData', 'Discoverable', 'Pattern']

    @dbus.service.method(ADAPTER, in_signature='', out_signature='', sender_keyword='sender')
    def StartDiscovery(self, sender=None):
        record(self.path, 'StartDiscovery')
        check_fault(self.name, 'StartDiscovery')
        if not self.powered:
            raise bluez_error('NotReady', 'Resource Not Ready')
        if self.discovering_owner is not None and self.discovering_owner != sender:
            raise bluez_error('InProgress', 'Operation already in progress')
        self.discovering_owner = sender
        if not self.props[ADAPTER]['Discovering']:
            changed(self, ADAPTER, {'Discovering': dbus.Boolean(True, variant_level=1)})
        GLib.timeout_add(30, lambda: air_tick() and False)

    @dbus.service.method(ADAPTER, in_signature='', out_signature='')
    def StopDiscovery(self):
        record(self.path, 'StopDiscovery')
        check_fault(self.name, 'StopDiscovery')
        if not self.props[ADAPTER]['Discovering']:
            raise bluez_error('Failed', 'No discovery started')
        self.discovering_owner = None
        changed(self, ADAPTER, {'Discovering': dbus.Boolean(False, variant_level=1)})

    @dbus.service.method(ADAPTER, in_signature='o', out_signature='')
    def RemoveDevice(self, path):
        record(self.path, 'RemoveDevice', (path,))
        obj = mockobject.objects.get(str(path))
        if not isinstance(obj, AirDevice) or obj.adapter is not self:
            raise bluez_error('DoesNotExist', 'Does Not Exist')
        for link in list(STATE['links']):
            if obj in (link.c_dev, link.p_dev):
                link.drop()
        remove_object(obj)

    def sees(self, other):
        '''Whether this adapter, scanning, sees other's advertisement.'''
        if other is self or not other.advs or not other.powered or not other.in_range:
            return False
        wanted = [str(u).lower() for u in self.filter.get('UUIDs', [])]
        uuids = [str(u).lower() for a in other.advs for u in a['props'].get('ServiceUUIDs', [])]
        if wanted and not any(u in uuids for u in wanted):
            return False
        pattern = str(self.filter.get('Pattern', ''))
        name = str(other.advs[0]['props'].get('LocalName', ''))
        if pattern and not (other.address.upper().startswith(pattern.upper()) or name.startswith(pattern)):
            return False
        return True

    def device_for(self, address):
        return mockobject.objects.get(dev_path(self.name, address))

    # -- GATT applications --------------------------------------------------

    @dbus.service.method(GATT_MANAGER, in_signature='oa{sv}', out_signature='',
                         sender_keyword='sender', async_callbacks=('ok', 'err'))
    def RegisterApplication(self, application, options, sender=None, ok=None, err=None):
        record(self.path, 'RegisterApplication', (application, options))
        try:
            check_fault(self.name, 'RegisterApplication')
        except dbus.exceptions.DBusException as e:
            err(e)
            return
        if any(a['owner'] == sender and a['path'] == str(application) for a in self.apps):
            err(bluez_error('AlreadyExists', 'Already Exists'))
            return

        def got(objects):
            tree = {}
            for path, ifaces in objects.items():
                tree[str(path)] = {str(i): dict(p) for i, p in ifaces.items()}
            chars = {p: AppChar(self, sender, p, ifaces[CHAR]) for p, ifaces in tree.items() if CHAR in ifaces}
            if not any(SERVICE in ifaces for ifaces in tree.values()):
                err(bluez_error('InvalidArguments', 'No services found'))
                return
            app = {'owner': sender, 'path': str(application), 'tree': tree, 'chars': chars}
            app['signal'] = STATE['conn'].add_signal_receiver(
                lambda iface, values, inval, path=None: self._app_changed(app, path, iface, values),
                signal_name='PropertiesChanged', dbus_interface=PROPS, bus_name=sender,
                path_keyword='path')
            app['watch'] = STATE['conn'].watch_name_owner(sender, lambda owner: owner or self._app_gone(app))
            app['removed'] = STATE['conn'].add_signal_receiver(
                lambda path, ifaces: self._app_gone(app), signal_name='InterfacesRemoved',
                dbus_interface=OBJECT_MANAGER_IFACE, bus_name=sender, path=str(application))
            self.apps.append(app)
            uuids = list(self.props[ADAPTER]['UUIDs'])
            for ifaces in tree.values():
                if SERVICE in ifaces:
                    uuids.append(str(ifaces[SERVICE]['UUID']).lower())
            changed(self, ADAPTER, {'UUIDs': dbus.Array(uuids, signature='s', variant_level=1)})
            ok()

        call_app(sender, application, OBJECT_MANAGER_IFACE, 'GetManagedObjects', '', [],
                 got, lambda e: err(bluez_error('Failed', 'GetManagedObjects failed: %s' % e)))

    @dbus.service.method(GATT_MANAGER, in_signature='o', out_signature='', sender_keyword='sender')
    def UnregisterApplication(self, application, sender=None):
        record(self.path, 'UnregisterApplication', (application,))
        app = next((a for a in self.apps if a['owner'] == sender and a['path'] == str(application)), None)
        if app is None:
            raise bluez_error('DoesNotExist', 'Does Not Exist')
        self._app_gone(app)

    def _app_gone(self, app):
        if app not in self.apps:
            return
        self.apps.remove(app)
        for key in ('signal', 'removed'):
            app[key].remove()
        app['watch'].cancel()
        for char in app['chars'].values():
            char.close()
        # bluetoothd removes the application's services; the mock drops the
        # links that used them.
        for link in list(STATE['links']):
            if link.peripheral is self and any(isinstance(m, MirrorChar) and m.app_char.owner == app['owner']
                                               for m in link.mirrors):
                link.drop()

    def _app_changed(self, app, path, iface, values):
        if app not in self.apps or iface != CHAR:
            return
        char = app['chars'].get(str(path))
        if char is None:
            return
        if 'Value' in values:
            char.notify_value(bytes(values['Value']))

    # -- advertising --------------------------------------------------------

    @dbus.service.method(ADV_MANAGER, in_signature='oa{sv}', out_signature='',
                         sender_keyword='sender', async_callbacks=('ok', 'err'))
    def RegisterAdvertisement(self, advertisement, options, sender=None, ok=None, err=None):
        record(self.path, 'RegisterAdvertisement', (advertisement, options))
        try:
            check_fault(self.name, 'RegisterAdvertisement')
        except dbus.exceptions.DBusException as e:
            err(e)
            return
        if any(a['owner'] == sender and a['path'] == str(advertisement) for a in self.advs):
            err(bluez_error('AlreadyExists', 'Already Exists'))
            return
        if len(self.advs) >= 4:
            err(bluez_error('NotPermitted', 'Maximum advertisements reached'))
            return

        def got(props):
            kind = str(props.get('Type', ''))
            if kind not in ('broadcast', 'peripheral'):
                err(bluez_error('InvalidArguments', 'Invalid Type "%s"' % kind))
                return
            adv = {'owner': sender, 'path': str(advertisement), 'props': dict(props)}
            adv['watch'] = STATE['conn'].watch_name_owner(sender, lambda owner: owner or self._adv_gone(adv))
            self.advs.append(adv)
            changed(self, ADV_MANAGER, {'ActiveInstances': dbus.Byte(len(self.advs), variant_level=1)})
            ok()
            air_tick()

        call_app(sender, advertisement, PROPS, 'GetAll', 's', [ADV], got,
                 lambda e: err(bluez_error('Failed', 'Failed to read the advertisement: %s' % e)))

    @dbus.service.method(ADV_MANAGER, in_signature='o', out_signature='', sender_keyword='sender')
    def UnregisterAdvertisement(self, advertisement, sender=None):
        record(self.path, 'UnregisterAdvertisement', (advertisement,))
        adv = next((a for a in self.advs if a['owner'] == sender and a['path'] == str(advertisement)), None)
        if adv is None:
            raise bluez_error('DoesNotExist', 'Does Not Exist')
        self._adv_gone(adv)

    def _adv_gone(self, adv):
        if adv not in self.advs:
            return
        adv['watch'].cancel()
        self.advs.remove(adv)
        changed(self, ADV_MANAGER, {'ActiveInstances': dbus.Byte(len(self.advs), variant_level=1)})


def air_tick():
    '''Let every scanning adapter see every advertising one.'''
    adapters = list(STATE['adapters'].values())
    for scanner in adapters:
        if not scanner.props[ADAPTER]['Discovering'] or not scanner.powered:
            continue
        for other in adapters:
            if scanner.sees(other):
                seen(scanner, other)
    return True


def seen(scanner, other):
    adv = dict(other.advs[0]['props'])
    adv['ServiceUUIDs'] = [u for a in other.advs for u in a['props'].get('ServiceUUIDs', [])]
    name = str(adv.get('LocalName', other.props[ADAPTER]['Alias']))
    uuids = dbus.Array([str(u).lower() for u in adv.get('ServiceUUIDs', [])], signature='s', variant_level=1)
    rssi = dbus.Int16(-50, variant_level=1)
    existing = scanner.device_for(other.address)
    if existing is not None:
        changed(existing, DEVICE, {'RSSI': rssi, 'UUIDs': uuids})
        return
    props = {
        'Address': dbus.String(other.address, variant_level=1),
        'AddressType': dbus.String('public', variant_level=1),
        'Name': dbus.String(name, variant_level=1),
        'Alias': dbus.String(name, variant_level=1),
        'Adapter': dbus.ObjectPath(scanner.path, variant_level=1),
        'Paired': dbus.Boolean(False, variant_level=1),
        'Bonded': dbus.Boolean(False, variant_level=1),
        'Trusted': dbus.Boolean(False, variant_level=1),
        'Blocked': dbus.Boolean(False, variant_level=1),
        'LegacyPairing': dbus.Boolean(False, variant_level=1),
        'Connected': dbus.Boolean(False, variant_level=1),
        'ServicesResolved': dbus.Boolean(False, variant_level=1),
        'UUIDs': uuids,
        'RSSI': rssi,
        'ManufacturerData': dbus.Dictionary(dict(adv.get('ManufacturerData', {})), signature='qv', variant_level=1),
        'ServiceData': dbus.Dictionary(dict(adv.get('ServiceData', {})), signature='sv', variant_level=1),
    }
    add_object(AirDevice(scanner, props))


class AirDevice(mockobject.DBusMockObject):
    '''A remote device as one adapter sees it.'''

    def __init__(self, adapter, props):
        super().__init__(STATE['bus_name'], dev_path(adapter.name, str(props['Address'])), DEVICE, props)
        self.adapter = adapter

    @property
    def address(self):
        return str(self.props[DEVICE]['Address'])

    def link(self):
        for link in STATE['links']:
            if self in (link.c_dev, link.p_dev):
                return link
        return None

    @dbus.service.method(DEVICE, in_signature='', out_signature='',
                         async_callbacks=('ok', 'err'))
    def Connect(self, ok=None, err=None):
        record(self.path, 'Connect')
        try:
            check_fault(self.adapter.name, 'Connect')
        except dbus.exceptions.DBusException as e:
            err(e)
            return
        if not self.adapter.powered:
            err(bluez_error('NotReady', 'Resource Not Ready'))
            return
        link = self.link()
        if link is not None:
            if link.c_dev is self and link.connected:
                err(bluez_error('AlreadyConnected', 'Already Connected'))
            else:
                err(bluez_error('InProgress', 'In Progress'))
            return
        peer = next((a for a in STATE['adapters'].values() if a.address.upper() == self.address.upper()), None)
        if peer is None or not peer.advs or not peer.powered or not peer.in_range:
            # An LE connection to a device that does not advertise never completes.
            GLib.timeout_add(STATE['connect_fail_delay_ms'],
                             lambda: err(bluez_error('Failed', 'le-connection-abort-by-local')) and False)
            return
        link = Link(self.adapter, peer, self)
        STATE['links'].append(link)
        GLib.timeout_add(STATE['connect_delay_ms'], lambda: link.establish(ok) and False)

    @dbus.service.method(DEVICE, in_signature='', out_signature='')
    def Disconnect(self):
        record(self.path, 'Disconnect')
        check_fault(self.adapter.name, 'Disconnect')
        link = self.link()
        if link is not None:
            link.drop()

    @dbus.service.method(DEVICE, in_signature='', out_signature='')
    def Pair(self):
        record(self.path, 'Pair')
        check_fault(self.adapter.name, 'Pair')
        changed(self, DEVICE, {'Paired': dbus.Boolean(True, variant_level=1),
                               'Bonded': dbus.Boolean(True, variant_level=1)})

    @dbus.service.method(DEVICE, in_signature='', out_signature='')
    def CancelPairing(self):
        record(self.path, 'CancelPairing')


class Link:
    '''A connection between a central adapter and a peripheral adapter.'''

    def __init__(self, central, peripheral, c_dev):
        self.central = central
        self.peripheral = peripheral
        self.c_dev = c_dev
        self.p_dev = None
        self.connected = False
        self.mirrors = []
        self.mtu = STATE['mtu']

    def establish(self, ok):
        if self not in STATE['links']:
            return
        p = self.peripheral
        existing = p.device_for(self.central.address)
        if existing is None:
            props = {
                'Address': dbus.String(self.central.address, variant_level=1),
                'AddressType': dbus.String('public', variant_level=1),
                'Name': dbus.String(str(self.central.props[ADAPTER]['Alias']), variant_level=1),
                'Alias': dbus.String(str(self.central.props[ADAPTER]['Alias']), variant_level=1),
                'Adapter': dbus.ObjectPath(p.path, variant_level=1),
                'Paired': dbus.Boolean(False, variant_level=1),
                'Bonded': dbus.Boolean(False, variant_level=1),
                'Trusted': dbus.Boolean(False, variant_level=1),
                'Blocked': dbus.Boolean(False, variant_level=1),
                'LegacyPairing': dbus.Boolean(False, variant_level=1),
                'Connected': dbus.Boolean(True, variant_level=1),
                'ServicesResolved': dbus.Boolean(False, variant_level=1),
                'UUIDs': dbus.Array([], signature='s', variant_level=1),
            }
            self.p_dev = AirDevice(p, props)
            add_object(self.p_dev)
        else:
            self.p_dev = existing
            changed(existing, DEVICE, {'Connected': dbus.Boolean(True, variant_level=1)})
        self.connected = True
        changed(self.c_dev, DEVICE, {'Connected': dbus.Boolean(True, variant_level=1)})
        ok()
        GLib.timeout_add(STATE['resolve_delay_ms'], lambda: self.resolve() and False)

    def resolve(self):
        '''Mirror the peripheral's GATT application under the central's device.'''
        if not self.connected:
            return
        handle = 0x10
        for app in self.peripheral.apps:
            services = sorted(p for p, i in app['tree'].items() if SERVICE in i)
            for spath in services:
                s_props = app['tree'][spath][SERVICE]
                mpath = '%s/service%04x' % (self.c_dev.path, handle)
                handle += 1
                svc = mockobject.DBusMockObject(STATE['bus_name'], mpath, SERVICE, {
                    'UUID': dbus.String(str(s_props['UUID']).lower(), variant_level=1),
                    'Primary': dbus.Boolean(bool(s_props.get('Primary', True)), variant_level=1),
                    'Device': dbus.ObjectPath(self.c_dev.path, variant_level=1),
                    'Handle': dbus.UInt16(handle - 1, variant_level=1),
                })
                add_object(svc)
                self.mirrors.append(svc)
                chars = sorted(p for p, i in app['tree'].items()
                               if CHAR in i and str(i[CHAR].get('Service', '')) == spath)
                for cpath in chars:
                    app_char = app['chars'][cpath]
                    mc = MirrorChar(self, '%s/char%04x' % (mpath, handle), mpath, app_char, handle)
                    handle += 2
                    add_object(mc)
                    self.mirrors.append(mc)
        changed(self.c_dev, DEVICE, {'ServicesResolved': dbus.Boolean(True, variant_level=1)})
        changed(self.p_dev, DEVICE, {'ServicesResolved': dbus.Boolean(True, variant_level=1)})

    def drop(self):
        '''Disconnect, by either side or by the air.'''
        if self in STATE['links']:
            STATE['links'].remove(self)
        was = self.connected
        self.connected = False
        for m in reversed(self.mirrors):
            if isinstance(m, MirrorChar):
                m.close()
            remove_object(m)
        self.mirrors = []
        if not was:
            return
        for dev in (self.c_dev, self.p_dev):
            if dev is not None and mockobject.objects.get(dev.path) is dev:
                changed(dev, DEVICE, {'ServicesResolved': dbus.Boolean(False, variant_level=1),
                                      'Connected': dbus.Boolean(False, variant_level=1)})
        if self.p_dev is not None and mockobject.objects.get(self.p_dev.path) is self.p_dev:
            remove_object(self.p_dev)

    def server_options(self, extra=None):
        opts = {
            'device': dbus.ObjectPath(self.p_dev.path),
            'mtu': dbus.UInt16(self.mtu),
            'link': dbus.String('LE'),
        }
        opts.update(extra or {})
        return dbus.Dictionary(opts, signature='sv')


class AppChar:
    '''A characteristic of a registered application, and the sockets the mock holds to it.'''

    def __init__(self, adapter, owner, path, props):
        self.adapter = adapter
        self.owner = owner
        self.path = path
        self.uuid = str(props['UUID']).lower()
        self.flags = [str(f) for f in props.get('Flags', [])]
        self.can_acquire_write = 'WriteAcquired' in props
        self.can_acquire_notify = 'NotifyAcquired' in props
        self.write_sock = None      # our end of the app's AcquireWrite socket
        self.write_pending = None   # packets waiting for that socket
        self.notify_sock = None     # our end of the app's AcquireNotify socket
        self.notify_watch = None
        self.app_notifying = False
        self.commands = []          # writes without response waiting for the application
        self.commands_in_flight = 0

    def subscribers(self):
        out = []
        for link in STATE['links']:
            for m in link.mirrors:
                if isinstance(m, MirrorChar) and m.app_char is self and (m.notify_sock or m.sessions):
                    out.append(m)
        return out

    def write(self, link, data, kind, ok, err):
        '''A central's write, to the application.'''
        if kind == 'command' and self.can_acquire_write:
            ok()
            if self.write_sock is not None:
                send_packet(self.write_sock, data)
                return
            if self.write_pending is not None:
                self.write_pending.append(data)
                return
            self.write_pending = [data]

            def got(fd, mtu):
                sock = socket.socket(fileno=fd.take())
                sock.setblocking(False)
                self.write_sock = sock
                for d in self.write_pending or []:
                    send_packet(sock, d)
                self.write_pending = None
                watch(sock, lambda _d: None, self._write_closed)

            call_app(self.owner, self.path, CHAR, 'AcquireWrite', 'a{sv}', [link.server_options()], got,
                     lambda e: setattr(self, 'write_pending', None))
            return
        opts = link.server_options({'type': dbus.String(kind), 'offset': dbus.UInt16(0)})
        if kind == 'command':
            ok()
            # Writes without response go to the application in order, a few
            # calls at a time (the bus refuses too many pending replies, and
            # a value refused there would be lost on the air).
            self.commands.append((data, opts))
            self._send_commands()
        else:
            call_app(self.owner, self.path, CHAR, 'WriteValue', 'aya{sv}',
                     [dbus.ByteArray(data), opts], lambda *a: ok(), lambda e: err(e))

    def _send_commands(self):
        while self.commands and self.commands_in_flight < 16:
            data, opts = self.commands.pop(0)
            self.commands_in_flight += 1

            def done(*_a):
                self.commands_in_flight -= 1
                self._send_commands()
            call_app(self.owner, self.path, CHAR, 'WriteValue', 'aya{sv}',
                     [dbus.ByteArray(data), opts], done, done)

    def _write_closed(self):
        if self.write_sock is not None:
            forget_outbox(self.write_sock)
            self.write_sock.close()
        self.write_sock = None

    def subscribe(self, link):
        '''A central subscribed: make sure the application notifies.'''
        if self.can_acquire_notify:
            if self.notify_sock is not None or self.notify_watch == 'pending':
                return
            self.notify_watch = 'pending'

            def got(fd, mtu):
                sock = socket.socket(fileno=fd.take())
                sock.setblocking(False)
                self.notify_sock = sock
                self.notify_watch = watch(sock, self.notify_value, self._notify_closed)

            call_app(self.owner, self.path, CHAR, 'AcquireNotify', 'a{sv}', [link.server_options()], got,
                     lambda e: setattr(self, 'notify_watch', None))
            return
        if not self.app_notifying:
            self.app_notifying = True
            call_app(self.owner, self.path, CHAR, 'StartNotify', '', [], lambda *a: None, lambda e: None)

    def unsubscribe(self):
        if self.subscribers():
            return
        if self.notify_sock is not None:
            self._notify_closed()
        elif self.app_notifying:
            self.app_notifying = False
            call_app(self.owner, self.path, CHAR, 'StopNotify', '', [], lambda *a: None, lambda e: None)

    def _notify_closed(self):
        if self.notify_watch not in (None, 'pending'):
            unwatch(self.notify_watch)
        self.notify_watch = None
        if self.notify_sock is not None:
            forget_outbox(self.notify_sock)
            self.notify_sock.close()
        self.notify_sock = None

    def notify_value(self, data):
        '''The application notified: to every subscribed central.'''
        for m in self.subscribers():
            m.deliver(data)

    def close(self):
        self._write_closed()
        self._notify_closed()


class MirrorChar(mockobject.DBusMockObject):
    '''A remote characteristic as the central's GATT client sees it.'''

    def __init__(self, link, path, service_path, app_char, handle):
        props = {
            'UUID': dbus.String(app_char.uuid, variant_level=1),
            'Service': dbus.ObjectPath(service_path, variant_level=1),
            'Value': dbus.Array([], signature='y', variant_level=1),
            'Notifying': dbus.Boolean(False, variant_level=1),
            'Flags': dbus.Array(app_char.flags, signature='s', variant_level=1),
            'Handle': dbus.UInt16(handle, variant_level=1),
            'MTU': dbus.UInt16(link.mtu, variant_level=1),
        }
        if 'write-without-response' in app_char.flags:
            props['WriteAcquired'] = dbus.Boolean(False, variant_level=1)
        if 'notify' in app_char.flags or 'indicate' in app_char.flags:
            props['NotifyAcquired'] = dbus.Boolean(False, variant_level=1)
        super().__init__(STATE['bus_name'], path, CHAR, props)
        self.link = link
        self.app_char = app_char
        self.sessions = set()
        self.write_sock = None
        self.notify_sock = None
        self.watches = []

    def _check(self, method):
        check_fault(self.link.central.name, method)
        if not self.link.connected:
            raise bluez_error('NotConnected', 'Not Connected')

    @dbus.service.method(CHAR, in_signature='a{sv}', out_signature='ay',
                         async_callbacks=('ok', 'err'), byte_arrays=True)
    def ReadValue(self, options, ok=None, err=None):
        record(self.path, 'ReadValue', (options,))
        try:
            self._check('ReadValue')
            if 'read' not in self.app_char.flags:
                raise bluez_error('NotPermitted', 'Read not permitted')
        except dbus.exceptions.DBusException as e:
            err(e)
            return
        opts = self.link.server_options({'offset': dbus.UInt16(int(options.get('offset', 0)))})

        def got(value):
            self.props[CHAR]['Value'] = dbus.Array(bytes(value), signature='y', variant_level=1)
            ok(dbus.ByteArray(bytes(value)))

        call_app(self.app_char.owner, self.app_char.path, CHAR, 'ReadValue', 'a{sv}', [opts], got, err)

    @dbus.service.method(CHAR, in_signature='aya{sv}', out_signature='',
                         async_callbacks=('ok', 'err'), byte_arrays=True)
    def WriteValue(self, value, options, ok=None, err=None):
        record(self.path, 'WriteValue', (value, options))
        kind = str(options.get('type', 'request'))
        try:
            self._check('WriteValue')
            if self.write_sock is not None:
                raise bluez_error('NotPermitted', 'Write acquired')
            if kind == 'command':
                if 'write-without-response' not in self.app_char.flags:
                    raise bluez_error('NotSupported', 'Operation is not supported')
                if len(value) > self.link.mtu - 3:
                    raise bluez_error('InvalidValueLength', 'Invalid Length')
            elif 'write' not in self.app_char.flags:
                raise bluez_error('NotPermitted', 'Write not permitted')
        except dbus.exceptions.DBusException as e:
            err(e)
            return
        self.app_char.write(self.link, bytes(value), kind, ok, err)

    @dbus.service.method(CHAR, in_signature='', out_signature='', sender_keyword='sender')
    def StartNotify(self, sender=None):
        record(self.path, 'StartNotify')
        self._check('StartNotify')
        if self.notify_sock is not None:
            raise bluez_error('NotPermitted', 'Notify acquired')
        if 'notify' not in self.app_char.flags and 'indicate' not in self.app_char.flags:
            raise bluez_error('NotSupported', 'Operation is not supported')
        if sender in self.sessions:
            raise bluez_error('InProgress', 'In Progress')
        self.sessions.add(sender)
        # bluetoothd ends a client's notify sessions when it leaves the bus.
        self.watches_owner = getattr(self, 'watches_owner', {})
        self.watches_owner[sender] = STATE['conn'].watch_name_owner(
            sender, lambda owner, s=sender: owner or self._session_gone(s))
        self.app_char.subscribe(self.link)
        if len(self.sessions) == 1:
            changed(self, CHAR, {'Notifying': dbus.Boolean(True, variant_level=1)})

    @dbus.service.method(CHAR, in_signature='', out_signature='', sender_keyword='sender')
    def StopNotify(self, sender=None):
        record(self.path, 'StopNotify')
        if sender not in self.sessions:
            raise bluez_error('Failed', 'No notify session started')
        self._session_gone(sender)

    def _session_gone(self, sender):
        if sender not in self.sessions:
            return
        self.sessions.discard(sender)
        w = getattr(self, 'watches_owner', {}).pop(sender, None)
        if w is not None:
            w.cancel()
        if not self.sessions and mockobject.objects.get(self.path) is self:
            changed(self, CHAR, {'Notifying': dbus.Boolean(False, variant_level=1)})
            self.app_char.unsubscribe()

    @dbus.service.method(CHAR, in_signature='a{sv}', out_signature='hq')
    def AcquireWrite(self, options):
        record(self.path, 'AcquireWrite', (options,))
        self._check('AcquireWrite')
        if 'write-without-response' not in self.app_char.flags:
            raise bluez_error('NotSupported', 'Operation is not supported')
        if self.write_sock is not None:
            raise bluez_error('NotPermitted', 'Write acquired')
        mine, theirs = seqpacket_pair()
        self.write_sock = mine
        limit = self.link.mtu - 3

        def packet(data):
            if len(data) <= limit:
                self.app_char.write(self.link, data, 'command', lambda: None, lambda e: None)

        self.watches.append(watch(mine, packet, self._write_released))
        GLib.idle_add(lambda: changed(self, CHAR, {'WriteAcquired': dbus.Boolean(True, variant_level=1)}) and False)
        fd = dbus.types.UnixFd(theirs.fileno())
        theirs.close()
        return (fd, dbus.UInt16(self.link.mtu))

    def _write_released(self):
        if self.write_sock is None:
            return
        forget_outbox(self.write_sock)
        self.write_sock.close()
        self.write_sock = None
        if mockobject.objects.get(self.path) is self:
            changed(self, CHAR, {'WriteAcquired': dbus.Boolean(False, variant_level=1)})

    @dbus.service.method(CHAR, in_signature='a{sv}', out_signature='hq')
    def AcquireNotify(self, options):
        record(self.path, 'AcquireNotify', (options,))
        self._check('AcquireNotify')
        if 'notify' not in self.app_char.flags and 'indicate' not in self.app_char.flags:
            raise bluez_error('NotSupported', 'Operation is not supported')
        if self.notify_sock is not None or self.sessions:
            raise bluez_error('NotPermitted', 'Notify already started')
        mine, theirs = seqpacket_pair()
        self.notify_sock = mine
        self.watches.append(watch(mine, lambda _d: None, self._notify_released))
        self.app_char.subscribe(self.link)
        GLib.idle_add(lambda: changed(self, CHAR, {'NotifyAcquired': dbus.Boolean(True, variant_level=1),
                                                   'Notifying': dbus.Boolean(True, variant_level=1)}) and False)
        fd = dbus.types.UnixFd(theirs.fileno())
        theirs.close()
        return (fd, dbus.UInt16(self.link.mtu))

    def _notify_released(self):
        if self.notify_sock is None:
            return
        forget_outbox(self.notify_sock)
        self.notify_sock.close()
        self.notify_sock = None
        if mockobject.objects.get(self.path) is self:
            changed(self, CHAR, {'NotifyAcquired': dbus.Boolean(False, variant_level=1),
                                 'Notifying': dbus.Boolean(False, variant_level=1)})
        self.app_char.unsubscribe()

    def deliver(self, data):
        '''A notification from the application, to this central.'''
        if len(data) > self.link.mtu - 3:
            return
        if self.notify_sock is not None:
            send_packet(self.notify_sock, data)
        elif self.sessions:
            changed(self, CHAR, {'Value': dbus.Array(data, signature='y', variant_level=1)})

    def close(self):
        for w in self.watches:
            unwatch(w)
        self.watches = []
        for w in getattr(self, 'watches_owner', {}).values():
            w.cancel()
        self.watches_owner = {}
        for s in (self.write_sock, self.notify_sock):
            if s is not None:
                forget_outbox(s)
                s.close()
        self.write_sock = None
        self.notify_sock = None
        self.sessions.clear()


# -- mock control (org.bluez.Mock on /) ------------------------------------

@dbus.service.method(MOCK_IFACE, in_signature='sss', out_signature='s')
def AddLEAdapter(self, name, address, alias):
    '''Add an LE adapter (e.g. "hci0", "00:00:00:11:11:11", "board-a"); returns its path.'''
    if name in STATE['adapters']:
        raise dbus.exceptions.DBusException('Adapter %s exists' % name, name=MOCK_IFACE + '.Exists')
    adapter = AirAdapter(name, address.upper(), alias)
    STATE['adapters'][name] = adapter
    add_object(adapter)
    return adapter.path


@dbus.service.method(MOCK_IFACE, in_signature='s', out_signature='')
def RemoveAdapter(self, name):
    '''Remove an adapter (its links drop, its devices go).'''
    adapter = STATE['adapters'].pop(name)
    for link in list(STATE['links']):
        if adapter in (link.central, link.peripheral):
            link.drop()
    for path in [p for p in mockobject.objects if p.startswith(adapter.path + '/')]:
        remove_object(mockobject.objects[path])
    remove_object(adapter)


@dbus.service.method(MOCK_IFACE, in_signature='ss', out_signature='')
def SimulateLinkLoss(self, adapter_name, address):
    '''Drop the link between adapter_name and the device at address (either side).'''
    adapter = STATE['adapters'][adapter_name]
    for link in list(STATE['links']):
        if (link.central is adapter and link.peripheral.address == address.upper()) or \
           (link.peripheral is adapter and link.central.address == address.upper()):
            link.drop()


@dbus.service.method(MOCK_IFACE, in_signature='sb', out_signature='')
def SetInRange(self, adapter_name, in_range):
    '''Move an adapter out of (or back into) range: out of range it is not seen and its links drop.'''
    adapter = STATE['adapters'][adapter_name]
    adapter.in_range = bool(in_range)
    if not in_range:
        for link in list(STATE['links']):
            if adapter in (link.central, link.peripheral):
                link.drop()
    else:
        air_tick()


@dbus.service.method(MOCK_IFACE, in_signature='sssu', out_signature='')
def FailNext(self, adapter_name, method, error_name, count):
    '''The next count calls of method on adapter_name's objects fail with error_name.'''
    message = error_name.split(':', 1)[1].strip() if ':' in error_name else ''
    name = error_name.split(':', 1)[0].strip()
    if int(count) == 0:
        STATE['faults'].pop((adapter_name, method), None)
    else:
        STATE['faults'][(adapter_name, method)] = [name, message, int(count)]


@dbus.service.method(MOCK_IFACE, in_signature='a{sv}', out_signature='')
def Configure(self, options):
    '''Set mtu, resolve_delay_ms, connect_delay_ms, connect_fail_delay_ms.'''
    for k, v in options.items():
        if k not in ('mtu', 'resolve_delay_ms', 'connect_delay_ms', 'connect_fail_delay_ms'):
            raise dbus.exceptions.DBusException('Unknown option %s' % k, name=MOCK_IFACE + '.Invalid')
        STATE[str(k)] = int(v)


@dbus.service.method(MOCK_IFACE, in_signature='', out_signature='a(tsss)')
def GetCallLog(self):
    '''Every call on a BlueZ interface: (ms, object path, method, arguments).'''
    return dbus.Array(STATE['log'], signature='(tsss)')


@dbus.service.method(MOCK_IFACE, in_signature='', out_signature='')
def ClearCallLog(self):
    '''Forget the call log.'''
    STATE['log'] = []


def load(mock, parameters):
    STATE['root'] = mock
    STATE['conn'] = mock.connection
    STATE['bus_name'] = mock.bus_name
    STATE['mtu'] = int(parameters.get('mtu', 517))
    mock.AddObject('/org/bluez', AGENT_MANAGER, {}, [
        ('RegisterAgent', 'os', '', ''),
        ('UnregisterAgent', 'o', '', ''),
        ('RequestDefaultAgent', 'o', '', ''),
    ])
    for name, address, alias in parameters.get('adapters', []):
        AddLEAdapter(mock, name, address, alias)
