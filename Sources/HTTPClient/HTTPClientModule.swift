// HTTPClient: placeholder until the module lands.
enum HTTPClientModule {}
