"""Shared test configuration.

Tests marked ``mininet`` need root, Open vSwitch and Mininet; they are skipped
with the reason when the machine cannot run them (not root, no OVS).
"""
