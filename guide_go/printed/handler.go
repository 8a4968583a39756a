package main

import (
	"encoding/json"
	"net/http"

	"github.com/gorilla/mux"
)

// SetupRoutes 设置路由
func SetupRoutes(manager *ClientManager) *mux.Router {
	r := mux.NewRouter()

	// SSE连接端点
	r.HandleFunc("/sse", handleSSE(manager)).Methods("GET")

	// 发送消息端点
	r.HandleFunc("/send", handleSend(manager)).Methods("POST")

	// 降杀文件
	r.PathPrefix("/").Handler(http.FileServer(http.Dir(".")))

	return r
}

// handleSSE 处理SSE连接
func handleSSE(manager *ClientManager) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		// 设置SSE响应头
		w.Header().Set("Content-Type", "text/event-stream")
		w.Header().Set("Cache-Control", "no-cache")
		w.Header().Set("Connection", "keep-alive")
		w.Header().Set("Access-Control-Allow-Origin", "*")

		// 获取用户名
		username := r.URL.Query().Get("username")
		if username == "" {
			username = "匿名用户"
		}

		// 创建客户端
		client := NewClient(username)

		// 发送连接ID
		connectionID := map[string]string{"id": client.ID}
		data, _ := json.Marshal(connectionID)
		sendSSE(w, "connection_id", string(data))

		// 注册客户端
		manager.Register(client)

		// 监听消息并发送
		flusher, _ := w.(http.Flusher)
		for message := range client.MessageChannel {
			fmt.Fprintf(w, "%s", message)
			flusher.Flush()
		}
	}
}

// handleSend 处理发送消息请求
func handleSend(manager *ClientManager) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		var msg struct {
			From    string `json:"from"`
			Content string `json:"content"`
		}

		if err := json.NewDecoder(r.Body).Decode(&msg); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}

		manager.SendChat(msg.From, msg.Content)
		w.WriteHeader(http.StatusOK)
	}
}

// sendSSE 发送SSE消息
func sendSSE(w http.ResponseWriter, event, data string) {
	fmt.Fprintf(w, "event: %s\ndata: %s\n\n", event, data)
}

// formatSSE 格式化SSE消息
func formatSSE(event, data string) string {
	return fmt.Sprintf("event: %s\ndata: %s\n\n", event, data)
}
