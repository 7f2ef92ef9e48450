#!/usr/bin/python3
"""containerd's Tasks.Update over its gRPC socket, as the Go client's
task.Update(WithResources(&specs.LinuxResources{...})) sends it: resources is
an Any with type URL types.containerd.io/opencontainers/runtime-spec/1/
LinuxResources and the JSON object as its value (typeurl.MarshalAny).
Debian's ctr 1.6 has no `ctr task update`; containerd_test.sh uses this.

    task_update.py SOCKET NAMESPACE ID '{"memory":{"limit":268435456}}' [KEY=VALUE...]

KEY=VALUE pairs become annotations. Prints "ok", or the gRPC status code
and message and exits 1. Needs Debian's python3-grpcio.
"""
import sys

import grpc

from pb_wire import field_bytes

TYPE_URL = "types.containerd.io/opencontainers/runtime-spec/1/LinuxResources"


def update_request(container_id, resources_json, annotations):
    # containerd.services.tasks.v1.UpdateTaskRequest{container_id=1,
    # google.protobuf.Any resources=2, map<string,string> annotations=3}.
    msg = field_bytes(1, container_id.encode())
    if resources_json:
        msg += field_bytes(2, field_bytes(1, TYPE_URL.encode()) +
                           field_bytes(2, resources_json.encode()))
    for k, v in annotations.items():
        msg += field_bytes(3, field_bytes(1, k.encode()) + field_bytes(2, v.encode()))
    return msg


def main():
    sock, namespace, cid, resources = sys.argv[1:5]
    annotations = dict(a.split("=", 1) for a in sys.argv[5:])
    channel = grpc.insecure_channel("unix://" + sock)
    update = channel.unary_unary("/containerd.services.tasks.v1.Tasks/Update",
                                 request_serializer=lambda b: b,
                                 response_deserializer=lambda b: b)
    try:
        update(update_request(cid, resources, annotations), timeout=10,
               metadata=[("containerd-namespace", namespace)])
    except grpc.RpcError as e:
        print(f"{e.code().name}: {e.details()}")
        return 1
    print("ok")
    return 0


if __name__ == "__main__":
    sys.exit(main())
