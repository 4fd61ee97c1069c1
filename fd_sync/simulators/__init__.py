"""Loopback simulators of ServiceNow's Table API and Flashduty's push endpoints.

They serve the demo, the tests and the benchmarks: real HTTP on 127.0.0.1,
the documented protocols, and fault injection (:class:`~.http.Fault`).
"""
