// EventLoop: placeholder until the module lands.
enum EventLoopModule {}
