"""Offline work on recorded exchanges: never touches the network, never prints."""
