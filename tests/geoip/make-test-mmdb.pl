#!/usr/bin/perl
# Writes the small GeoIP2-City-schema database the unit and system tests use:
#   make-test-mmdb.pl OUT.mmdb
# Every network and place is invented here for the tests (documentation and
# well-known resolver ranges, with coordinates of real cities).
use strict;
use warnings;
use MaxMind::DB::Writer::Tree;

my $out = shift or die "usage: $0 OUT.mmdb\n";

my %types = (
    continent => 'map', country => 'map', registered_country => 'map', location => 'map',
    names => 'map', code => 'utf8_string', iso_code => 'utf8_string', en => 'utf8_string',
    latitude => 'double', longitude => 'double', accuracy_radius => 'uint16',
);

sub place {
    my (%a) = @_;
    my %r;
    $r{continent} = { code => $a{continent} } if $a{continent};
    $r{country} = { iso_code => $a{country} } if $a{country};
    $r{registered_country} = { iso_code => $a{registered} } if $a{registered};
    $r{location} = { latitude => $a{lat}, longitude => $a{lon}, accuracy_radius => 100 }
        if defined $a{lat};
    return \%r;
}

my $tree = MaxMind::DB::Writer::Tree->new(
    ip_version              => 6,
    record_size             => 28,
    database_type           => 'steerdns-Test-City',
    languages               => ['en'],
    description             => { en => 'steerdns test database' },
    map_key_type_callback   => sub { $types{ $_[0] } },
    remove_reserved_networks => 0,
    alias_ipv6_to_ipv4      => 1,
);

my @networks = (
    # Paris and Frankfurt: both nearest to paris, so they merge into one /16.
    ['193.51.0.0/17',   place(continent => 'EU', country => 'FR', lat => 48.8566, lon => 2.3522)],
    ['193.51.128.0/17', place(continent => 'EU', country => 'DE', lat => 50.1109, lon => 8.6821)],
    # Ashburn (virginia) and Sydney.
    ['8.8.8.0/24',      place(continent => 'NA', country => 'US', lat => 39.0438, lon => -77.4874)],
    ['1.1.1.0/24',      place(continent => 'OC', country => 'AU', lat => -33.8688, lon => 151.2093)],
    # Tokyo: nearest singapore.
    ['203.0.113.0/24',  place(continent => 'AS', country => 'JP', lat => 35.6762, lon => 139.6503)],
    # Known country, no coordinates: placed at the country's point (NL: Amsterdam).
    ['198.51.100.0/24', place(continent => 'EU', country => 'NL')],
    # Only a registered country.
    ['192.0.2.0/25',    place(registered => 'BR', continent => 'SA', lat => -23.5505, lon => -46.6333)],
    # IPv6: Mountain View-ish and Singapore.
    ['2001:4860::/32',  place(continent => 'NA', country => 'US', lat => 37.386, lon => -122.0838)],
    ['2001:db8:5::/48', place(continent => 'AS', country => 'SG', lat => 1.3521, lon => 103.8198)],
);
$tree->insert_network(@$_) for @networks;
open my $fh, '>:raw', $out or die "$out: $!\n";
$tree->write_tree($fh);
close $fh or die "$out: $!\n";
