// WebSocket: placeholder until the module lands.
enum WebSocketModule {}
