// Include ldns through this header only. ldns/common.h #defines bool, true
// and false unless <stdbool.h> was seen first, which breaks C++ headers
// included after it (std::optional's comparisons, for one).
#pragma once

#include <stdbool.h>  // NOLINT(modernize-deprecated-headers): must precede ldns
#include <ldns/ldns.h>
