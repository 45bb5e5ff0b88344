// Hub: placeholder until the module lands.
enum HubModule {}
