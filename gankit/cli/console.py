"""The one rich console every command prints to (tests narrow or widen it; torchrun's other ranks mute it)."""

from rich.console import Console

console = Console()
