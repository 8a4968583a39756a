# The commands on the API page (chapters/api.md), run in this order by
# tools/make_api_transcripts.py against a fresh `python -m my_chat` (started in an empty
# folder, so its data is in var/ exactly as with `make chat`). Each "## name" starts a
# section the page includes; within one, commands are separated by a blank line. Shell
# variables ($TOKEN, $SERVICE_KEY) carry over from one section to the next, as in a terminal.

## signup
curl -s -X POST http://127.0.0.1:8080/api/signup \
  -H 'Content-Type: application/json' \
  -d '{"username": "alice", "password": "correct horse"}'

curl -s -X POST http://127.0.0.1:8080/api/signup \
  -H 'Content-Type: application/json' \
  -d '{"username": "bob", "password": "battery staple"}'

## login
curl -s -X POST http://127.0.0.1:8080/api/login -c cookies.txt \
  -H 'Content-Type: application/json' \
  -d '{"username": "alice", "password": "correct horse"}'

TOKEN=$(curl -s -X POST http://127.0.0.1:8080/api/login \
  -H 'Content-Type: application/json' \
  -d '{"username": "alice", "password": "correct horse"}' | jq -r .token)

## jwt
jq -R 'split(".") | .[0:2] | map(gsub("-"; "+") | gsub("_"; "/") | @base64d | fromjson)' <<< "$TOKEN"

## me
curl -s http://127.0.0.1:8080/api/me -H "Authorization: Bearer $TOKEN"

curl -s http://127.0.0.1:8080/api/me -b cookies.txt

curl -s -o /dev/null -w '%{http_code}\n' -X POST http://127.0.0.1:8080/api/logout -b cookies.txt -c cookies.txt

curl -s http://127.0.0.1:8080/api/me -b cookies.txt

## messages
curl -s -X POST http://127.0.0.1:8080/api/messages \
  -H "Authorization: Bearer $TOKEN" -H 'Content-Type: application/json' \
  -d '{"text": "hello, room"}'

curl -s -X POST http://127.0.0.1:8080/api/messages \
  -H "Authorization: Bearer $TOKEN" -H 'Content-Type: application/json' \
  -d '{"text": "just for you", "to": "bob"}'

## message-errors
curl -s -X POST http://127.0.0.1:8080/api/messages \
  -H "Authorization: Bearer $TOKEN" -H 'Content-Type: application/json' \
  -d '{"text": ""}'

curl -s -X POST http://127.0.0.1:8080/api/messages \
  -H "Authorization: Bearer $TOKEN" -H 'Content-Type: application/json' \
  -d '{"text": "hi", "to": "nobody"}'

curl -s -X POST http://127.0.0.1:8080/api/messages \
  -H "Authorization: Bearer $TOKEN" -d 'text=hi'

curl -s http://127.0.0.1:8080/api/me -H "Authorization: Bearer not-a-token"

## sse
curl -s -N -i --max-time 2 http://127.0.0.1:8080/sse -H "Authorization: Bearer $TOKEN"

## sse-resume
curl -s -N --max-time 2 http://127.0.0.1:8080/sse -H "Authorization: Bearer $TOKEN" \
  -H 'Last-Event-ID: 1'

## history
curl -s 'http://127.0.0.1:8080/api/history?limit=20' -H "Authorization: Bearer $TOKEN" | jq .

curl -s 'http://127.0.0.1:8080/api/history?before=2&limit=20' -H "Authorization: Bearer $TOKEN"

## online
curl -s -N --max-time 5 http://127.0.0.1:8080/sse -H "Authorization: Bearer $TOKEN" > alice.txt &

until grep -q '^event: online' alice.txt 2>/dev/null; do sleep 0.1; done

curl -s http://127.0.0.1:8080/api/online -H "Authorization: Bearer $TOKEN"

## service-key
SERVICE_KEY=$(cat var/service_key)

## push
curl -s -X POST http://127.0.0.1:8080/api/push \
  -H "Authorization: Bearer $SERVICE_KEY" -H 'Content-Type: application/json' \
  -d '{"user_ids": ["alice"], "event": "order_created", "data": {"order_no": "123"}}'

curl -s -X POST http://127.0.0.1:8080/api/broadcast \
  -H "Authorization: Bearer $SERVICE_KEY" -H 'Content-Type: application/json' \
  -d '{"event": "maintenance", "data": {"at": "22:00"}}'

## stats
curl -s http://127.0.0.1:8080/api/stats -H "Authorization: Bearer $SERVICE_KEY" | jq .

## push-received
wait; grep -A1 -E '^event: (order_created|maintenance)' alice.txt

## push-errors
curl -s -X POST http://127.0.0.1:8080/api/push \
  -H "Authorization: Bearer $SERVICE_KEY" -H 'Content-Type: application/json' \
  -d '{"user_ids": ["alice"], "event": "message", "data": "fake"}'

curl -s -X POST http://127.0.0.1:8080/api/push \
  -H "Authorization: Bearer $TOKEN" -H 'Content-Type: application/json' \
  -d '{"user_ids": ["alice"], "event": "order_created", "data": {}}'

## status
curl -s http://127.0.0.1:8080/api/status
