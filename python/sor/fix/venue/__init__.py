"""Simulated venues as FIX acceptors: a real-time ``sor.sim`` market behind one FIX session per
venue, and its market data over UDP (``sor.feed.udp``)."""
