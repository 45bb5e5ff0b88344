// Pipeline: placeholder until the module lands.
enum PipelineModule {}
