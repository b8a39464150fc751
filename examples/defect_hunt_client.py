#!/usr/bin/python3
"""Defect hunt through `stemtwin serve`, speaking the DTMicroscope TEM client's protocol.

Standard library only (socket + json): JSON-RPC 2.0 requests framed as netstrings, one
request per connection, exactly as the DTMicroscope TEM client does, so the same steps run
against any server of that protocol. Units are the client's: metres, radians, seconds.

What it does, like an operator looking for something unusual at low dose first:
  1. low-dose HAADF overview of the field of view;
  2. splits it into tiles and finds the most anomalous one (robust z-score of the tile
     means and contrasts against the median tile: dark amorphous patches, bright dopants);
  3. moves the stage there (relative move, metres) and takes zoomed, higher-dose frames;
  4. parks the beam on the brightest pixel of the zoom and records the diffraction pattern;
  5. reads the dose delivered with get_microscope_status.

    stemtwin serve --specimen crystal &    # the small periodic crystal it was written for, port 9093
    /usr/bin/python3 examples/defect_hunt_client.py [--port 9093] [--quick]

Exit code 0 when every step worked and the numbers are consistent, 1 otherwise.
"""
import argparse
import json
import math
import socket
import sys


class TwinClient:
    """JSON-RPC 2.0 over netstrings, one connection per request (DTMicroscope style)."""

    def __init__(self, host="127.0.0.1", port=9093, timeout=900.0):
        self.host, self.port, self.timeout = host, port, timeout
        self.next_id = 1

    def _read_exact(self, sock, n):
        chunks = []
        while n > 0:
            chunk = sock.recv(min(n, 1 << 20))
            if not chunk:
                raise ConnectionError("server closed the connection mid-reply")
            chunks.append(chunk)
            n -= len(chunk)
        return b"".join(chunks)

    def _read_netstring(self, sock):
        # Read the announced length, then exactly that many bytes and the ','. (Reading until
        # the data ends in ',' - as the reference client does - can stop inside the JSON.)
        digits = b""
        while True:
            c = sock.recv(1)
            if not c:
                raise ConnectionError("no reply from the server")
            if c == b":":
                break
            if not c.isdigit() or len(digits) > 20:
                raise RuntimeError("malformed netstring length: %r" % (digits + c))
            digits += c
        payload = self._read_exact(sock, int(digits))
        if self._read_exact(sock, 1) != b",":
            raise RuntimeError("netstring without its trailing ','")
        return json.loads(payload.decode("utf-8"))

    def call(self, method, **params):
        request = {"jsonrpc": "2.0", "id": self.next_id, "method": method, "params": params}
        self.next_id += 1
        payload = json.dumps(request, separators=(",", ":")).encode("utf-8")
        with socket.create_connection((self.host, self.port), timeout=self.timeout) as sock:
            sock.sendall(str(len(payload)).encode("ascii") + b":" + payload + b",")
            reply = self._read_netstring(sock)
        if "error" in reply:
            err = reply["error"]
            raise RuntimeError("%s: error %s: %s" % (method, err.get("code"), err.get("message")))
        return reply["result"]

    def acquire_image(self, device, **settings):
        data, shape, dtype = self.call("acquire_image", device=device, **settings)
        return data, shape, dtype


def flat(nested):
    out = []
    for v in nested:
        if isinstance(v, list):
            out.extend(flat(v))
        else:
            out.append(float(v))
    return out


def median(values):
    s = sorted(values)
    n = len(s)
    return s[n // 2] if n % 2 else 0.5 * (s[n // 2 - 1] + s[n // 2])


def tile_anomaly(image, tiles):
    """The tile whose mean or contrast (std) is furthest from the median tile, in robust
    z-scores (median absolute deviation). Returns (score, tile_x, tile_y, feature)."""
    ny, nx = len(image), len(image[0])
    th, tw = ny // tiles, nx // tiles
    stats = []
    for ty in range(tiles):
        for tx in range(tiles):
            vals = [image[y][x] for y in range(ty * th, (ty + 1) * th) for x in range(tx * tw, (tx + 1) * tw)]
            m = sum(vals) / len(vals)
            sd = math.sqrt(sum((v - m) ** 2 for v in vals) / len(vals))
            stats.append((tx, ty, m, sd))
    best = (0.0, tiles // 2, tiles // 2, "none")
    for idx, name in ((2, "mean"), (3, "contrast")):
        col = [s[idx] for s in stats]
        med = median(col)
        mad = median([abs(c - med) for c in col]) or 1e-12
        for s in stats:
            z = abs(s[idx] - med) / (1.4826 * mad)
            if z > best[0]:
                best = (z, s[0], s[1], ("low " if s[idx] < med else "high ") + name)
    return best


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=9093)
    ap.add_argument("--quick", action="store_true", help="small scans (tests): 16 x 16 pixels")
    args = ap.parse_args()
    tem = TwinClient(args.host, args.port)

    devices = tem.call("get_detectors")
    print("devices:", devices)
    for needed in ("scan", "ceta_camera"):
        if needed not in devices:
            print("the server has no %s device" % needed)
            return 1
    start = tem.call("get_microscope_status")
    stage0 = tem.call("get_stage")
    print("stage: x=%.2f nm y=%.2f nm" % (stage0[0] * 1e9, stage0[1] * 1e9))

    n = 16 if args.quick else 64
    fov = 1.2e-9 if args.quick else 4.0e-9        # m
    low_dwell, high_dwell = 1e-6, 8e-6             # s per pixel
    tiles = 4

    # 1. low-dose overview
    tem.call("activate_device", device="scan")
    tem.call("device_settings", device="scan", size=n, exposure=low_dwell, field_of_view=fov, detectors=["HAADF"])
    data, shape, dtype = tem.acquire_image("scan")
    if shape != [n, n] or dtype != "float32" or len(flat(data)) != n * n:
        print("unexpected overview: shape %s dtype %s" % (shape, dtype))
        return 1
    print("overview: %d x %d px over %.1f nm, %.1f us/px" % (n, n, fov * 1e9, low_dwell * 1e6))

    # 2. the most anomalous tile
    score, tx, ty, feature = tile_anomaly(data, tiles)
    fx, fy = (tx + 0.5) / tiles, (ty + 0.5) / tiles
    print("anomaly: tile (%d, %d), %s, robust z = %.1f" % (tx, ty, feature, score))

    # 3. centre it (relative stage move; scan rotation is 0) and zoom in at higher dose
    dx, dy = (fx - 0.5) * fov, (fy - 0.5) * fov
    moved = tem.call("set_stage", stage_positions={"x": dx, "y": dy}, relative=True)
    expected = [stage0[0] + dx, stage0[1] + dy]
    if any(abs(moved["new_stage"][i] - expected[i]) > 1e-15 for i in range(2)):
        print("stage did not go where asked: %s vs %s" % (moved["new_stage"][:2], expected))
        return 1
    zoom_fov = fov / tiles * 2
    frames = 2
    # As the reference server: the device's settings with "data" (frames × image) and "shape".
    reply = tem.call("acquire_image_stack", device="scan", frames=frames, size=n,
                     exposure=high_dwell, field_of_view=zoom_fov)
    stack, sshape = reply["data"], reply["shape"]
    if sshape != [frames, n, n]:
        print("unexpected stack shape", sshape)
        return 1
    zoom = [[(stack[0][y][x] + stack[1][y][x]) / 2 for x in range(n)] for y in range(n)]
    print("zoom: %d frames of %d x %d px over %.2f nm, %.1f us/px" % (frames, n, n, zoom_fov * 1e9, high_dwell * 1e6))

    # 4. park the beam on the brightest pixel and record the pattern
    iy, ix = max(((y, x) for y in range(n) for x in range(n)), key=lambda p: zoom[p[0]][p[1]])
    tem.call("device_settings", device="scan", field_of_view=zoom_fov)  # the beam position refers to this field
    tem.call("set_beam_position", x=(ix + 0.5) / n, y=(iy + 0.5) / n)
    pattern, pshape, _ = tem.acquire_image("ceta_camera", exposure=1e-3)
    total = sum(flat(pattern))
    print("pattern at pixel (%d, %d): %s px, %.3g counts" % (ix, iy, pshape, total))

    # An EDS point spectrum on the same pixel: a plain list of counts per channel, as the
    # reference server sends it (2048 channels over 0-20 keV).
    eds_exposure = 0.1
    spectrum = tem.call("acquire_spectrum", device="super_x", exposure=eds_exposure)
    print("EDS at pixel (%d, %d): %d channels, %d counts in %.1f s" % (ix, iy, len(spectrum), sum(spectrum), eds_exposure))

    # 5. dose delivered
    status = tem.call("get_microscope_status")
    electrons = status["total_electrons"] - start["total_electrons"]
    current = status["beam_current"]
    e = 1.602176634e-19
    predicted = current / e * (n * n * low_dwell + frames * n * n * high_dwell + 1e-3 + eds_exposure)
    print("dose: %.4g electrons (predicted %.4g), mean %.3g e/A^2, max %.3g e/A^2"
          % (electrons, predicted, status["mean_dose"], status["max_dose"]))
    if abs(electrons - predicted) > 1e-6 * predicted:
        print("the dose bookkeeping disagrees with I*t/e")
        return 1
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except (OSError, RuntimeError, ValueError, KeyError) as err:
        print("defect_hunt_client:", err)
        sys.exit(1)
