"""Development tools: the simulator, producing to Kafka, the embedded broker and the demo."""
