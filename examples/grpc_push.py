"""Push an event over gRPC, as another backend service (an order service, say) would.

    python -m my_chat --grpc-port 50051                  # the server, in another terminal
    SERVICE_KEY=$(cat var/service_key) python examples/grpc_push.py alice bob

It lists who is online, pushes ``order_created`` to the users named on the command line, and
shows the error a bad call gets. ``GRPC_ADDRESS`` picks another server (127.0.0.1:50051).
"""

from __future__ import annotations

import json
import os
import sys

import grpc

from my_chat import sse_pb2, sse_pb2_grpc


# --8<-- [start:client]
def main(users: list[str]) -> None:
    address = os.environ.get("GRPC_ADDRESS", "127.0.0.1:50051")
    key = (("authorization", f"Bearer {os.environ['SERVICE_KEY']}"),)
    with grpc.insecure_channel(address) as channel:
        sse = sse_pb2_grpc.SSEServiceStub(channel)

        online = sse.OnlineUsers(sse_pb2.OnlineUsersRequest(), metadata=key, timeout=5)
        print("online:", ", ".join(online.user_ids) or "nobody")

        request = sse_pb2.PushToUsersRequest(
            user_ids=users, event="order_created", json_data=json.dumps({"order_no": "123"})
        )
        reply = sse.PushToUsers(request, metadata=key, timeout=5)
        print("queued:", reply.queued)  # connections that took it: accepted, not delivered

        try:
            sse.PushToUsers(sse_pb2.PushToUsersRequest(event="message"), metadata=key, timeout=5)
        except grpc.RpcError as error:
            print("refused:", error.code().name, error.details())


# --8<-- [end:client]

if __name__ == "__main__":
    main(sys.argv[1:] or ["alice"])
