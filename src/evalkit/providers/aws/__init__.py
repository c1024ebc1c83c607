"""Amazon: Bedrock (Converse) and SageMaker endpoints over one aioboto3 session."""
