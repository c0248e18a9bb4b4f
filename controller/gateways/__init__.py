"""The os-ken gateway controller: fabric forwarding, load balancing and snapshot-id stamping."""
