package main

import (
	"encoding/json"
	"fmt"
	"net/http"
	"sync"

	"github.com/google/uuid"
)

// Client 代表一个连接的客户端
type Client struct {
	ID             string
	Username       string
	MessageChannel chan []byte
}

// NewClient 创建新客户端
func NewClient(username string) *Client {
	return &Client{
		ID:             uuid.New().String(),
		Username:       username,
		MessageChannel: make(chan []byte, 100),
	}
}

// Send 发送消息给客户端
func (c *Client) Send(message []byte) bool {
	select {
	case c.MessageChannel <- message:
		return true
	default:
		return false // 通道满了，消息丢弃
	}
}

// ClientManager 管理所有客户端
type ClientManager struct {
	clients      sync.Map // username -> *Client
	registerChan chan *Client
	broadcastChan chan []byte
	chatChan     chan *ChatMessage
}

// ChatMessage 聊天消息
type ChatMessage struct {
	From    string `json:"from"`
	Content string `json:"content"`
	Type    string `json:"type"` // chat, system, online_list
}

// NewClientManager 创建管理器
func NewClientManager() *ClientManager {
	return &ClientManager{
		registerChan:  make(chan *Client),
		broadcastChan: make(chan []byte, 100),
		chatChan:      make(chan *ChatMessage, 100),
	}
}

// Run 启动管理器主循环
func (m *ClientManager) Run() {
	for {
		select {
		case client := <-m.registerChan:
			m.clients.Store(client.ID, client)
			welcome := fmt.Sprintf("欢迎 %s 加入聊天室", client.Username)
			m.BroadcastSystemMessage(welcome)
			m.SendOnlineList()

		case message := <-m.broadcastChan:
			m.clients.Range(func(key, value interface{}) bool {
				client := value.(*Client)
				client.Send(message)
				return true
			})

		case chatMsg := <-m.chatChan:
			data, _ := json.Marshal(chatMsg)
			msg := formatSSE("chat", string(data))
			m.clients.Range(func(key, value interface{}) bool {
				client := value.(*Client)
				client.Send([]byte(msg))
				return true
			})
		}
	}
}
