#!/usr/bin/perl
# Writes three small databases in other layouts than the City one, for the
# unit and system tests of what steerdns accepts and refuses:
#   make-schema-test-mmdbs.pl OUTDIR
#   OUTDIR/test-country.mmdb      GeoIP2-Country schema: countries and
#                                 continents, no coordinates
#   OUTDIR/test-flat.mmdb         flat records (country_code, latitude,
#                                 longitude, continent_code or continent at
#                                 the top level), as IPinfo's and DB-IP's lite files
#   OUTDIR/test-unplaceable.mmdb  records without any location, country or
#                                 continent (an ASN database)
# Every network and place is invented here for the tests; each file has a
# fixed build epoch.
use strict;
use warnings;
use MaxMind::DB::Writer::Tree;

my $dir = shift or die "usage: $0 OUTDIR\n";

my %types = (
    continent => 'map', country => 'map', registered_country => 'map',
    code => 'utf8_string', iso_code => 'utf8_string',
    asn => 'uint32', as_name => 'utf8_string', as_domain => 'utf8_string',
    latitude => 'double', longitude => 'double',
    country_code => 'utf8_string', continent_code => 'utf8_string',
);
# In the flat layout `country` and `continent` are names, not maps.
my %flat_types = (%types, country => 'utf8_string', continent => 'utf8_string');

sub write_db {
    my ($name, $type, $epoch, $types, @networks) = @_;
    my $tree = MaxMind::DB::Writer::Tree->new(
        ip_version               => 6,
        record_size              => 28,
        database_type            => $type,
        languages                => ['en'],
        description              => { en => "steerdns test database ($name)" },
        map_key_type_callback    => sub { $types->{ $_[0] } },
        remove_reserved_networks => 0,
        alias_ipv6_to_ipv4       => 1,
    );
    $tree->insert_network(@$_) for @networks;
    $tree->_set_build_epoch($epoch);  # the writer's hook for identical output
    my $out = "$dir/$name";
    open my $fh, '>:raw', "$out.tmp" or die "$out.tmp: $!\n";
    $tree->write_tree($fh);
    close $fh or die "$out.tmp: $!\n";
    rename "$out.tmp", $out or die "$out: $!\n";
}

sub nested {
    my (%a) = @_;
    my %r;
    $r{continent} = { code => $a{continent} } if $a{continent};
    $r{country} = { iso_code => $a{country} } if $a{country};
    $r{registered_country} = { iso_code => $a{registered} } if $a{registered};
    return \%r;
}

write_db('test-country.mmdb', 'steerdns-Test-Country', 1700000000, \%types,
    # France and Germany: both nearest paris from their countries' points, one /16.
    ['193.51.0.0/17',   nested(continent => 'EU', country => 'FR', registered => 'FR')],
    ['193.51.128.0/17', nested(continent => 'EU', country => 'DE', registered => 'DE')],
    ['8.8.8.0/24',      nested(continent => 'NA', country => 'US', registered => 'US')],
    ['203.0.113.0/24',  nested(continent => 'AS', country => 'JP', registered => 'JP')],
    # Only a registered country.
    ['192.0.2.0/25',    nested(continent => 'SA', registered => 'BR')],
    # Kosovo: MaxMind's XK is no ISO 3166 code, so its continent places it.
    ['198.51.100.0/24', nested(continent => 'EU', country => 'XK')],
    # A continent alone (as MaxMind's records for "Europe" anycast space).
    ['192.0.2.128/25',  nested(continent => 'OC')],
    ['2001:db8:5::/48', nested(continent => 'AS', country => 'SG')],
);

write_db('test-flat.mmdb', 'steerdns-Test-Flat', 1700000100, \%flat_types,
    # IPinfo lite: codes and names, no coordinates ("de" in lower case).
    ['193.51.0.0/17',   { country_code => 'FR', country => 'France', continent_code => 'EU',
                          continent => 'Europe', asn => 2200, as_name => 'Renater' }],
    ['193.51.128.0/17', { country_code => 'de', continent => 'Europe' }],
    # Coordinates at the top level (DB-IP lite City style): Ashburn.
    ['8.8.8.0/24',      { country_code => 'US', continent => 'NA',
                          latitude => 39.0438, longitude => -77.4874 }],
    # A continent's name alone.
    ['1.1.1.0/24',      { continent => 'Oceania' }],
    ['203.0.113.0/24',  { latitude => 35.6762, longitude => 139.6503 }],
    ['2001:db8:5::/48', { country_code => 'SG', continent_code => 'AS' }],
);

write_db('test-unplaceable.mmdb', 'steerdns-Test-ASN', 1700000200, \%types,
    ['193.51.0.0/16',   { asn => 2200, as_name => 'Renater' }],
    ['8.8.8.0/24',      { asn => 15169, as_name => 'Google', as_domain => 'google.com' }],
    ['2001:db8:5::/48', { asn => 64500, as_name => 'Example' }],
);
