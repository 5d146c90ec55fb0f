"""OpenAI ``chat.completion.chunk`` and ``text_completion`` streams: wire, results, assembler."""
