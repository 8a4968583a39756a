package main

// Added by the workbook: the guide's client.go and handler.go call these four methods but
// never show them. Each does what its name suggests, and nothing more.

import "encoding/json"

// Register hands a new client to Run; registerChan has no buffer, so this waits for Run.
func (m *ClientManager) Register(client *Client) {
	m.registerChan <- client
}

// SendChat queues a chat message for Run to send to every client.
func (m *ClientManager) SendChat(from, content string) {
	m.chatChan <- &ChatMessage{From: from, Content: content, Type: "chat"}
}

// BroadcastSystemMessage queues a system message on broadcastChan, as its name says.
func (m *ClientManager) BroadcastSystemMessage(content string) {
	data, _ := json.Marshal(&ChatMessage{From: "system", Content: content, Type: "system"})
	m.broadcastChan <- []byte(formatSSE("chat", string(data)))
}

// SendOnlineList queues the name of every registered client on broadcastChan.
func (m *ClientManager) SendOnlineList() {
	names := []string{}
	m.clients.Range(func(key, value interface{}) bool {
		names = append(names, value.(*Client).Username)
		return true
	})
	data, _ := json.Marshal(names)
	m.broadcastChan <- []byte(formatSSE("online_list", string(data)))
}
