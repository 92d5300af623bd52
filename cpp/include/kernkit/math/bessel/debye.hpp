// Debye (uniform large-order) expansion coefficients for I_v and K_v, DLMF 10.41.
// Generated from the exact rational recurrence DLMF 10.41.9-10 (scratch script, Fractions):
//   u_{k+1}(t) = t^2 (1-t^2)/2 u_k'(t) + 1/8 int_0^t (1-5 tau^2) u_k(tau) dtau,
//   w_k(t) = (v_k(t) - u_k(t)) / (1-t^2) = -t (u_{k-1}(t)/2 + t u_{k-1}'(t))   (from DLMF 10.41.11).
// With hyp = sqrt(v^2+x^2), t = v/hyp, s = t^2 and y = 1/hyp one has
//   u_k(t)/v^k = P_k(s) y^k,   w_k(t)/v^k = Q_k(s) y^k,
// so the expansion is a series in 1/hyp that stays valid for small v when x is large (it then
// coincides with the Hankel expansion DLMF 10.40) -- this is why one table serves all of hyp >= 25.
// max_{s in [0,1]} |P_k|, |Q_k| are attained at s = 0 and grow roughly like (2k)!/(8^k k!).
#pragma once
#include "../config.hpp"

namespace kernkit {
namespace bessel_detail {

constexpr int kDebyeMaxTerms = 18;

// P_k and Q_k in the arithmetic type T (bessel/debye_float.hpp evaluates the first six in float).
template <class T>
KERNKIT_INLINE T debye_p1(T s) { return T(-0.20833333333333334) * s + T(0.125); }
template <class T>
KERNKIT_INLINE T debye_p2(T s) { return (T(0.3342013888888889) * s + T(-0.4010416666666667)) * s + T(0.0703125); }
template <class T>
KERNKIT_INLINE T debye_p3(T s) { return ((T(-1.0258125964506173) * s + T(1.8464626736111112)) * s + T(-0.8912109375)) * s + T(0.0732421875); }
template <class T>
KERNKIT_INLINE T debye_p4(T s) { return (((T(4.669584423426247) * s + T(-11.207002616222994)) * s + T(8.78912353515625)) * s + T(-2.3640869140625)) * s + T(0.112152099609375); }
template <class T>
KERNKIT_INLINE T debye_p5(T s) { return ((((T(-28.212072558200244) * s + T(84.63621767460073)) * s + T(-91.81824154324002)) * s + T(42.53499874538846)) * s + T(-7.368794359479632)) * s + T(0.22710800170898438); }
template <class T>
KERNKIT_INLINE T debye_p6(T s) { return (((((T(212.57013003921713) * s + T(-765.2524681411817)) * s + T(1059.9904525279999)) * s + T(-699.5796273761325)) * s + T(218.1905117442116)) * s + T(-26.491430486951554)) * s + T(0.5725014209747314); }
template <class T>
KERNKIT_INLINE T debye_p7(T s) { return ((((((T(-1919.457662318407) * s + T(8061.722181737309)) * s + T(-13586.550006434138)) * s + T(11655.393336864534)) * s + T(-5305.646978613403)) * s + T(1200.9029132163525)) * s + T(-108.09091978839466)) * s + T(1.7277275025844574); }
template <class T>
KERNKIT_INLINE T debye_p8(T s) { return (((((((T(20204.29133096615) * s + T(-96980.59838863752)) * s + T(192547.00123253153)) * s + T(-203400.17728041555)) * s + T(122200.46498301746)) * s + T(-41192.65496889755)) * s + T(7109.514302489364)) * s + T(-493.915304773088)) * s + T(6.074042001273483); }
template <class T>
KERNKIT_INLINE T debye_p9(T s) { return ((((((((T(-242919.18790055133) * s + T(1311763.6146629772)) * s + T(-2998015.9185381066)) * s + T(3763271.297656404)) * s + T(-2813563.226586534)) * s + T(1268365.2733216248)) * s + T(-331645.1724845636)) * s + T(45218.76898136273)) * s + T(-2499.8304818112097)) * s + T(24.380529699556064); }
template <class T>
KERNKIT_INLINE T debye_p10(T s) { return (((((((((T(3284469.853072038) * s + T(-19706819.118432228)) * s + T(50952602.49266464)) * s + T(-74105148.21153265)) * s + T(66344512.27472903)) * s + T(-37567176.66076335)) * s + T(13288767.166421818)) * s + T(-2785618.1280864547)) * s + T(308186.4046126624)) * s + T(-13886.08975371704)) * s + T(110.01714026924674); }
template <class T>
KERNKIT_INLINE T debye_p11(T s) { return ((((((((((T(-49329253.66450996) * s + T(325573074.18576574)) * s + T(-939462359.6815784)) * s + T(1553596899.57058)) * s + T(-1621080552.1083372)) * s + T(1106842816.8230145)) * s + T(-495889784.2750303)) * s + T(142062907.7975331)) * s + T(-24474062.72573873)) * s + T(2243768.1779224495)) * s + T(-84005.43360302408)) * s + T(551.3358961220206); }
template <class T>
KERNKIT_INLINE T debye_p12(T s) { return (((((((((((T(814789096.1183121) * s + T(-5866481492.051847)) * s + T(18688207509.295826)) * s + T(-34632043388.158775)) * s + T(41280185579.753975)) * s + T(-33026599749.800724)) * s + T(17954213731.1556)) * s + T(-6563293792.619285)) * s + T(1559279864.8792574)) * s + T(-225105661.88941526)) * s + T(17395107.553978164)) * s + T(-549842.3275722887)) * s + T(3038.090510922384); }
template <class T>
KERNKIT_INLINE T debye_p13(T s) { return ((((((((((((T(-14679261247.695616) * s + T(114498237732.0258)) * s + T(-399096175224.4665)) * s + T(819218669548.5773)) * s + T(-1098375156081.2233)) * s + T(1008158106865.3821)) * s + T(-645364869245.3765)) * s + T(287900649906.1506)) * s + T(-87867072178.02327)) * s + T(17634730606.83497)) * s + T(-2167164983.223795)) * s + T(143157876.71888897)) * s + T(-3871833.442572613)) * s + T(18257.755474293175); }
template <class T>
KERNKIT_INLINE T debye_p14(T s) { return (((((((((((((T(286464035717.679) * s + T(-2406297900028.504)) * s + T(9109341185239.898)) * s + T(-20516899410934.438)) * s + T(30565125519935.32)) * s + T(-31667088584785.16)) * s + T(23348364044581.84)) * s + T(-12320491305598.287)) * s + T(4612725780849.132)) * s + T(-1196552880196.1816)) * s + T(205914503232.41)) * s + T(-21822927757.529224)) * s + T(1247009293.5127103)) * s + T(-29188388.122220814)) * s + T(118838.42625678325); }
template <class T>
KERNKIT_INLINE T debye_p15(T s) { return ((((((((((((((T(-6019723417234.006) * s + T(54177510755106.05)) * s + T(-221349638702525.2)) * s + T(542739664987659.75)) * s + T(-889496939881026.5)) * s + T(1026955196082762.5)) * s + T(-857461032982895.0)) * s + T(523054882578444.6)) * s + T(-232604831188939.94)) * s + T(74373122908679.14)) * s + T(-16634824724892.48)) * s + T(2485000928034.0854)) * s + T(-229619372968.24646)) * s + T(11465754899.448236)) * s + T(-234557963.52225152)) * s + T(832859.3040162893); }
template <class T>
KERNKIT_INLINE T debye_p16(T s) { return (((((((((((((((T(135522158703093.69) * s + T(-1301012723549699.5)) * s + T(5705782159023671.0)) * s + T(-1.5129826322457682e+16)) * s + T(2.705471130619708e+16)) * s + T(-3.4447226006485144e+16)) * s + T(3.213827526858624e+16)) * s + T(-2.2268225133911144e+16)) * s + T(1.1486706978449752e+16)) * s + T(-4379325838364015.5)) * s + T(1212675804250347.5)) * s + T(-236652530451649.25)) * s + T(31007436472896.46)) * s + T(-2521558474912.8545)) * s + T(110997405139.17902)) * s + T(-2001646928.1917763)) * s + T(6252951.493434797); }
template <class T>
KERNKIT_INLINE T debye_p17(T s) { return ((((((((((((((((T(-3254192619642669.0) * s + T(3.3192764720355224e+16)) * s + T(-1.5552983504313904e+17)) * s + T(4.4347954614171904e+17)) * s + T(-8.592577980317548e+17)) * s + T(1.1961991142756308e+18)) * s + T(-1.2336116931960694e+18)) * s + T(9.575335098169139e+17)) * s + T(-5.62631788074636e+17)) * s + T(2.4960365126160426e+17)) * s + T(-8.270945651585064e+16)) * s + T(2.0064271476309532e+16)) * s + T(-3450385511846272.5)) * s + T(400044457043036.25)) * s + T(-28863837631414.76)) * s + T(1128709145410.874)) * s + T(-18078220384.658062)) * s + T(50069589.531988926); }
template <class T>
KERNKIT_INLINE T debye_p18(T s) { return (((((((((((((((((T(8.30195760673191e+16) * s + T(-8.966114215270463e+17)) * s + T(4.47020096401231e+18)) * s + T(-1.3639420410571592e+19)) * s + T(2.846521225167657e+19)) * s + T(-4.301555703831444e+19)) * s + T(4.859942729324836e+19)) * s + T(-4.178861444656839e+19)) * s + T(2.757282981650519e+19)) * s + T(-1.3970803516443374e+19)) * s + T(5.402894876715982e+18)) * s + T(-1.5736434765189599e+18)) * s + T(3.37667624979061e+17)) * s + T(-5.1605093193485224e+16)) * s + T(5335106978708839.0)) * s + T(-343965304743075.94)) * s + T(12030115826419.191)) * s + T(-172283238717.3505)) * s + T(425939216.5047669); }
template <class T>
KERNKIT_INLINE T debye_q1(T) { return T(-0.5); }
template <class T>
KERNKIT_INLINE T debye_q2(T s) { return T(0.7291666666666666) * s + T(-0.1875); }
template <class T>
KERNKIT_INLINE T debye_q3(T s) { return (T(-2.1723090277777777) * s + T(1.8046875)) * s + T(-0.17578125); }
template <class T>
KERNKIT_INLINE T debye_q4(T s) { return ((T(9.745219666280864) * s + T(-13.848470052083334)) * s + T(4.90166015625)) * s + T(-0.25634765625); }
template <class T>
KERNKIT_INLINE T debye_q5(T s) { return (((T(-58.36980529282809) * s + T(117.67352747034144)) * s + T(-74.70755004882812)) * s + T(15.36656494140625)) * s + T(-0.5046844482421875); }
template <class T>
KERNKIT_INLINE T debye_q6(T s) { return ((((T(437.2871246521038) * s + T(-1142.5889386071099)) * s + T(1055.9097777472603)) * s + T(-404.0824880811903)) * s + T(55.26595769609724)) * s + T(-1.249094009399414); }
template <class T>
KERNKIT_INLINE T debye_q7(T s) { return (((((T(-3932.547405725517) * s + T(12626.665724329498)) * s + T(-15369.861561655998)) * s + T(8744.745342201657)) * s + T(-2291.0003733142216)) * s + T(225.17715913908822)) * s + T(-3.7212592363357544); }
template <class T>
KERNKIT_INLINE T debye_q8(T s) { return ((((((T(41268.33973984575) * s + T(-157203.58254387754)) * s + T(237764.6251125974)) * s + T(-180658.59672140027)) * s + T(71626.23421128094)) * s + T(-13810.383501988053)) * s + T(1026.8637379897493)) * s + T(-12.95795626938343); }
template <class T>
KERNKIT_INLINE T debye_q9(T s) { return (((((((T(-495005.13760867063) * s + T(2182063.463744344)) * s + T(-3947213.5252668965)) * s + T(3762903.2796876873)) * s + T(-2016307.6722197882)) * s + T(597293.4970490145)) * s + T(-88868.92878111705)) * s + T(5186.110700117424)) * s + T(-51.629357010824606); }
template <class T>
KERNKIT_INLINE T debye_q10(T s) { return ((((((((T(6680277.667265162) * s + T(-33449972.17390592)) * s + T(70453374.08564551)) * s + T(-80910332.89961268)) * s + T(54864482.918437414)) * s + T(-22196392.283128433)) * s + T(5140500.173510736)) * s + T(-610453.3812483968)) * s + T(28748.05054082891)) * s + T(-231.6150321457826); }
template <class T>
KERNKIT_INLINE T debye_q11(T s) { return (((((((((T(-100176330.51869716) * s + T(561644344.8753184)) * s + T(-1350243966.055613)) * s + T(1815576131.1825502)) * s + T(-1492751526.1814032)) * s + T(770127121.5456487)) * s + T(-245842192.57880363)) * s + T(45962699.1134265)) * s + T(-4468702.866883605)) * s + T(173576.121921463)) * s + T(-1155.1799728270908); }
template <class T>
KERNKIT_INLINE T debye_q12(T s) { return ((((((((((T(1652529997.7610838) * s + T(-10255551836.851622)) * s + T(27714139610.606564)) * s + T(-42723914738.19095)) * s + T(41337554078.762596)) * s + T(-26010806195.34084)) * s + T(10661630361.91315)) * s + T(-2770226702.051895)) * s + T(428296097.7004278)) * s + T(-34778406.757797964)) * s + T(1134073.3536408253)) * s + T(-6340.362805403237); }
template <class T>
KERNKIT_INLINE T debye_q13(T s) { return (((((((((((T(-29739802008.318394) * s + T(202393611475.78873)) * s + T(-607366744052.1143)) * s + T(1056277323338.8428)) * s + T(-1176485289022.9883)) * s + T(875204893369.7191)) * s + T(-439878236413.3122)) * s + T(147674110333.9339)) * s + T(-31965237230.02478)) * s + T(4164454744.9541826)) * s + T(-287019274.6406397)) * s + T(7972713.749798186)) * s + T(-37976.1313865298); }
template <class T>
KERNKIT_INLINE T debye_q14(T s) { return ((((((((((((T(579830819283.9768) * s + T(-4293683914950.968)) * s + T(14167914220468.56)) * s + T(-27443825429877.34)) * s + T(34598817416558.535)) * s + T(-29740664152528.773)) * s + T(17747533904247.855)) * s + T(-7341466572606.84)) * s + T(2064876196183.5466)) * s + T(-379146708046.95184)) * s + T(42259717172.864006)) * s + T(-2505262842.5805573)) * s + T(60013418.35987549)) * s + T(-246479.69890295787); }
template <class T>
KERNKIT_INLINE T debye_q15(T s) { return (((((((((((((T(-12174721518001.36) * s + T(97455064951154.4)) * s + T(-350709635631736.1)) * s + T(748866828499107.0)) * s + T(-1054496830437768.5)) * s + T(1029180379005517.6)) * s + T(-712125103359746.1)) * s + T(351134002209551.2)) * s + T(-122237233192502.0)) * s + T(29315545564806.45)) * s + T(-4633076322729.226)) * s + T(447370019029.34906)) * s + T(-23069671929.98514)) * s + T(481608404.0166434)) * s + T(-1723157.1807233572); }
template <class T>
KERNKIT_INLINE T debye_q16(T s) { return ((((((((((((((T(273897415484147.25) * s + T(-2356721717847113.0)) * s + T(9186010006154796.0)) * s + T(-2.143821676701256e+16)) * s + T(3.3356135245538492e+16)) * s + T(-3.645690946093807e+16)) * s + T(2.8724944604926984e+16)) * s + T(-1.6476228801221006e+16)) * s + T(6861842520073728.0)) * s + T(-2045260879988676.5)) * s + T(424188030484758.25)) * s + T(-58397521808801.01)) * s + T(4936816518817.299)) * s + T(-223582220539.24063)) * s + T(4104764361.639402)) * s + T(-12909319.212252485); }
template <class T>
KERNKIT_INLINE T debye_q17(T s) { return (((((((((((((((T(-6572824697100044.0) * s + T(6.049709164506102e+16)) * s + T(-2.5390730607655334e+17)) * s + T(6.430176187044515e+17)) * s + T(-1.0957158079009818e+18)) * s + T(1.326218201249678e+18)) * s + T(-1.173047047303398e+18)) * s + T(7.682537671199345e+17)) * s + T(-3.7331797679961696e+17)) * s + T(1.3356943807010246e+17)) * s + T(-3.45612604211349e+16)) * s + T(6271292056968705.0)) * s + T(-759682193585963.2)) * s + T(56735065685539.23)) * s + T(-2275446805353.17)) * s + T(37030468171.54786)) * s + T(-103173699.64167415); }
template <class T>
KERNKIT_INLINE T debye_q18(T s) { return ((((((((((((((((T(1.6759091991159744e+17) * s + T(-1.6430418536575836e+18)) * s + T(7.387667164549104e+18)) * s + T(-2.0178319349448217e+19)) * s + T(3.737771421438133e+19)) * s + T(-4.964226324243868e+19)) * s + T(4.8727661881244746e+19)) * s + T(-3.590750661813427e+19)) * s + T(1.997342847664958e+19)) * s + T(-8.361722317263743e+18)) * s + T(2.6053478802492954e+18)) * s + T(-5.918960085511311e+17)) * s + T(9.48856015757725e+16)) * s + T(-1.0201133654597424e+16)) * s + T(678300184338246.9)) * s + T(-24267246626333.793)) * s + T(352525297500.8322)) * s + T(-876217816.8098062); }

// Sums over k = 1..n (n <= kDebyeMaxTerms) by Horner in y:
//   pu = sum P_k y^k, pk = sum P_k (-y)^k   (U - 1 for I, U-bar - 1 for K)
//   qu = sum Q_k y^k, qk = sum Q_k (-y)^k   (only when WD: needed for ratios / derivatives)
// T: double, or float for the float kernels (bessel/debye_float.hpp, n <= 6).
template <bool WI, bool WK, bool WD, class T>
KERNKIT_INLINE void debye_sums(int n, T s, T y, T& pu, T& pk, T& qu, T& qk) {
  T a = T(0), b = T(0), c = T(0), d = T(0);
  const T my = -y;
  switch (n) {
    case 18: {
      const T p = debye_p18(s);
      if (WI) a = a * y + p;
      if (WK) b = b * my + p;
      if (WD) {
        const T q = debye_q18(s);
        if (WI) c = c * y + q;
        if (WK) d = d * my + q;
      }
    }
      [[fallthrough]];
    case 17: {
      const T p = debye_p17(s);
      if (WI) a = a * y + p;
      if (WK) b = b * my + p;
      if (WD) {
        const T q = debye_q17(s);
        if (WI) c = c * y + q;
        if (WK) d = d * my + q;
      }
    }
      [[fallthrough]];
    case 16: {
      const T p = debye_p16(s);
      if (WI) a = a * y + p;
      if (WK) b = b * my + p;
      if (WD) {
        const T q = debye_q16(s);
        if (WI) c = c * y + q;
        if (WK) d = d * my + q;
      }
    }
      [[fallthrough]];
    case 15: {
      const T p = debye_p15(s);
      if (WI) a = a * y + p;
      if (WK) b = b * my + p;
      if (WD) {
        const T q = debye_q15(s);
        if (WI) c = c * y + q;
        if (WK) d = d * my + q;
      }
    }
      [[fallthrough]];
    case 14: {
      const T p = debye_p14(s);
      if (WI) a = a * y + p;
      if (WK) b = b * my + p;
      if (WD) {
        const T q = debye_q14(s);
        if (WI) c = c * y + q;
        if (WK) d = d * my + q;
      }
    }
      [[fallthrough]];
    case 13: {
      const T p = debye_p13(s);
      if (WI) a = a * y + p;
      if (WK) b = b * my + p;
      if (WD) {
        const T q = debye_q13(s);
        if (WI) c = c * y + q;
        if (WK) d = d * my + q;
      }
    }
      [[fallthrough]];
    case 12: {
      const T p = debye_p12(s);
      if (WI) a = a * y + p;
      if (WK) b = b * my + p;
      if (WD) {
        const T q = debye_q12(s);
        if (WI) c = c * y + q;
        if (WK) d = d * my + q;
      }
    }
      [[fallthrough]];
    case 11: {
      const T p = debye_p11(s);
      if (WI) a = a * y + p;
      if (WK) b = b * my + p;
      if (WD) {
        const T q = debye_q11(s);
        if (WI) c = c * y + q;
        if (WK) d = d * my + q;
      }
    }
      [[fallthrough]];
    case 10: {
      const T p = debye_p10(s);
      if (WI) a = a * y + p;
      if (WK) b = b * my + p;
      if (WD) {
        const T q = debye_q10(s);
        if (WI) c = c * y + q;
        if (WK) d = d * my + q;
      }
    }
      [[fallthrough]];
    case 9: {
      const T p = debye_p9(s);
      if (WI) a = a * y + p;
      if (WK) b = b * my + p;
      if (WD) {
        const T q = debye_q9(s);
        if (WI) c = c * y + q;
        if (WK) d = d * my + q;
      }
    }
      [[fallthrough]];
    case 8: {
      const T p = debye_p8(s);
      if (WI) a = a * y + p;
      if (WK) b = b * my + p;
      if (WD) {
        const T q = debye_q8(s);
        if (WI) c = c * y + q;
        if (WK) d = d * my + q;
      }
    }
      [[fallthrough]];
    case 7: {
      const T p = debye_p7(s);
      if (WI) a = a * y + p;
      if (WK) b = b * my + p;
      if (WD) {
        const T q = debye_q7(s);
        if (WI) c = c * y + q;
        if (WK) d = d * my + q;
      }
    }
      [[fallthrough]];
    case 6: {
      const T p = debye_p6(s);
      if (WI) a = a * y + p;
      if (WK) b = b * my + p;
      if (WD) {
        const T q = debye_q6(s);
        if (WI) c = c * y + q;
        if (WK) d = d * my + q;
      }
    }
      [[fallthrough]];
    case 5: {
      const T p = debye_p5(s);
      if (WI) a = a * y + p;
      if (WK) b = b * my + p;
      if (WD) {
        const T q = debye_q5(s);
        if (WI) c = c * y + q;
        if (WK) d = d * my + q;
      }
    }
      [[fallthrough]];
    case 4: {
      const T p = debye_p4(s);
      if (WI) a = a * y + p;
      if (WK) b = b * my + p;
      if (WD) {
        const T q = debye_q4(s);
        if (WI) c = c * y + q;
        if (WK) d = d * my + q;
      }
    }
      [[fallthrough]];
    case 3: {
      const T p = debye_p3(s);
      if (WI) a = a * y + p;
      if (WK) b = b * my + p;
      if (WD) {
        const T q = debye_q3(s);
        if (WI) c = c * y + q;
        if (WK) d = d * my + q;
      }
    }
      [[fallthrough]];
    case 2: {
      const T p = debye_p2(s);
      if (WI) a = a * y + p;
      if (WK) b = b * my + p;
      if (WD) {
        const T q = debye_q2(s);
        if (WI) c = c * y + q;
        if (WK) d = d * my + q;
      }
    }
      [[fallthrough]];
    case 1: {
      const T p = debye_p1(s);
      if (WI) a = a * y + p;
      if (WK) b = b * my + p;
      if (WD) {
        const T q = debye_q1(s);
        if (WI) c = c * y + q;
        if (WK) d = d * my + q;
      }
    }
      break;
    default:
      break;
  }
  pu = a * y;
  pk = b * my;
  qu = c * y;
  qk = d * my;
}

}  // namespace bessel_detail
}  // namespace kernkit
