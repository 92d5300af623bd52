#include "defs.hpp"

NB_MODULE(_core, m) {
  m.doc() = "kernkit's compiled core (use the `kernkit` package, not this module)";
  def_runtime(m);
  def_special(m);
  def_rational(m);
  def_quant(m);
  def_toeplitz(m);
  def_hashattn(m);
  def_vmf(m);
}
